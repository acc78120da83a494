import type { Fen } from "./money.js";
import type { RefundSlotPolicy } from "./refund.js";

export type TierPolicy = "best_available" | "exact";

export interface Tier {
  readonly id: string;
  readonly activityId: string;
  readonly thresholdFen: Fen;
  readonly discountFen: Fen;
  readonly quota: number;
}

export interface Activity {
  readonly id: string;
  readonly name: string;
  readonly merchants: ReadonlySet<string>;
  /** Highest threshold first: the order in which tiers are tried. */
  readonly tiers: readonly Tier[];
  /** Stopped by an operator (emergency stop): its payments are refused activity_paused. */
  readonly paused?: boolean;
}

export interface Campaign {
  readonly id: string;
  readonly name: string;
  readonly budgetFen: Fen;
  /** Inclusive bounds, epoch milliseconds. */
  readonly windowStartMs: number;
  readonly windowEndMs: number;
  readonly tierPolicy: TierPolicy;
  /** After a refund returns a voucher, may the payer be granted again in that activity? Default `kept`. */
  readonly refundSlot?: RefundSlotPolicy;
  /** In the campaign's order: the first activity listing a merchant applies. */
  readonly activities: readonly Activity[];
  /**
   * Loaded campaigns this one wins over where both could take a payment (a second inside both
   * windows, at a merchant both list). Declared in the campaign file; without it such an overlap
   * is refused at load (see campaign-overlap.ts).
   */
  readonly overrides?: readonly string[];
}

export function sortTiersForChoice(tiers: readonly Tier[]): Tier[] {
  return [...tiers].sort((a, b) => b.thresholdFen - a.thresholdFen || a.id.localeCompare(b.id));
}

export function totalQuotaDiscountFen(campaign: Campaign): Fen {
  let total = 0;
  for (const activity of campaign.activities) {
    for (const tier of activity.tiers) total += tier.discountFen * tier.quota;
  }
  return total;
}

export function findTier(campaign: Campaign, tierId: string): Tier | undefined {
  for (const activity of campaign.activities) {
    const tier = activity.tiers.find((t) => t.id === tierId);
    if (tier) return tier;
  }
  return undefined;
}

/**
 * 额满即止: a campaign whose budget is below the sum of quota x discount stops granting at the
 * budget, before its stock runs out. Only such campaigns carry a budget counter that every
 * grant must draw from; the others cannot overspend by construction.
 */
export function isBudgetCapped(campaign: Campaign): boolean {
  return campaign.budgetFen < totalQuotaDiscountFen(campaign);
}
