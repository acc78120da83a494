import type { Campaign, Tier } from "./campaign.js";
import { rejected, type Rejected } from "./decision.js";
import type { Payment } from "./payment.js";

/**
 * Everything about a payment that can be decided without looking at stock or
 * at the payer's history: which campaign and activity the merchant selects,
 * the window, and which tiers the amount qualifies for.
 *
 * Order of checks: merchant, window, activity paused, threshold. Payer history and stock are
 * the worker's (they need the serialized partition), so a payer who already
 * holds a voucher and pays below every threshold is told below_threshold.
 */
export type Classification =
  | { readonly kind: "decided"; readonly decision: Rejected }
  | { readonly kind: "needs_stock"; readonly request: StockRequest };

export interface StockRequest {
  readonly campaignId: string;
  readonly activityId: string;
  /** Tiers to try, highest threshold first; one tier under the `exact` policy. */
  readonly tierIds: readonly string[];
}

export function classify(payment: Payment, campaigns: readonly Campaign[]): Classification {
  const listing = campaigns.filter((c) => c.activities.some((a) => a.merchants.has(payment.merchantId)));
  if (listing.length === 0) return { kind: "decided", decision: rejected("merchant_not_eligible") };

  const open = listing.filter((c) => inWindow(c, payment.paidAtMs));
  const campaign = open[0];
  if (campaign === undefined) {
    const first = listing[0]!;
    const activity = first.activities.find((a) => a.merchants.has(payment.merchantId))!;
    return { kind: "decided", decision: rejected("outside_window", first.id, activity.id) };
  }

  const activity = campaign.activities.find((a) => a.merchants.has(payment.merchantId))!;
  if (activity.paused) return { kind: "decided", decision: rejected("activity_paused", campaign.id, activity.id) };
  const qualifying = qualifyingTiers(activity.tiers, payment.amountFen);
  if (qualifying.length === 0) {
    return { kind: "decided", decision: rejected("below_threshold", campaign.id, activity.id) };
  }
  const tiers = campaign.tierPolicy === "exact" ? qualifying.slice(0, 1) : qualifying;
  return {
    kind: "needs_stock",
    request: { campaignId: campaign.id, activityId: activity.id, tierIds: tiers.map((t) => t.id) },
  };
}

/** Tiers whose threshold the amount meets, highest threshold first. */
export function qualifyingTiers(tiersHighestFirst: readonly Tier[], amountFen: number): Tier[] {
  return tiersHighestFirst.filter((t) => t.thresholdFen <= amountFen);
}

/**
 * The window's bounds are inclusive to the second: a campaign that ends at
 * 23:59:59 still takes a payment made at 23:59:59.900, as an acquirer expects.
 */
export function inWindow(campaign: Campaign, paidAtMs: number): boolean {
  const second = Math.floor(paidAtMs / 1000) * 1000;
  return second >= Math.floor(campaign.windowStartMs / 1000) * 1000 && second <= campaign.windowEndMs;
}

/**
 * Campaigns in the order they are tried when several list a merchant:
 * earliest window first, then id, so the answer never depends on load order;
 * except that a campaign goes before every campaign it overrides (its file
 * said it wins where they overlap; see campaign-overlap.ts).
 */
export function orderCampaigns(campaigns: readonly Campaign[]): Campaign[] {
  const byWindow = [...campaigns].sort((a, b) => a.windowStartMs - b.windowStartMs || a.id.localeCompare(b.id));
  const present = new Set(byWindow.map((c) => c.id));
  const overriddenBy = new Map<string, number>();
  for (const c of byWindow) {
    for (const id of c.overrides ?? []) if (present.has(id)) overriddenBy.set(id, (overriddenBy.get(id) ?? 0) + 1);
  }
  const ordered: Campaign[] = [];
  const left = byWindow;
  while (left.length > 0) {
    // Loads keep the relation free of loops; should edited rows make one, window order breaks it.
    const next = Math.max(
      0,
      left.findIndex((c) => (overriddenBy.get(c.id) ?? 0) === 0),
    );
    const [campaign] = left.splice(next, 1);
    ordered.push(campaign!);
    for (const id of campaign!.overrides ?? []) overriddenBy.set(id, (overriddenBy.get(id) ?? 0) - 1);
  }
  return ordered;
}
