import type { Campaign } from "./campaign.js";
import { findTier } from "./campaign.js";
import { invariant } from "./assert.js";
import { rejected, type Decision } from "./decision.js";
import type { StockRequest } from "./classify.js";

/**
 * The decision of an owner's batch, in arrival order.
 *
 * Inputs: the attempts (already classified as needing stock), the stock of
 * each tier the owner holds (its partitions' shares, added up), the tiers
 * known to be empty everywhere, and the (activity, payer) pairs that already
 * hold a voucher.
 *
 * States of a tier, as seen by one partition:
 *   share > 0            -> grant from the share
 *   share = 0, empty     -> known empty everywhere: try the next lower tier
 *   share = 0, not empty -> unknown: stop here, the caller refills the share
 *                           from the pool or the other owners' partitions,
 *                           then calls again with the rest of the batch.
 *
 * Budget-capped campaigns (isBudgetCapped) also pass the budget left: a tier
 * whose discount the budget can no longer pay is skipped like an empty one,
 * and an attempt that only such tiers could serve is refused
 * `budget_exhausted` (never a fen over the budget).
 *
 * Trade-off: stopping at the first attempt that needs a refill keeps arrival
 * order exact within the batch, at the price of a refill's round trips before
 * the rest (a refill moves a chunk of stock, so this is rare).
 */
export interface BatchAttempt {
  readonly payerId: string;
  readonly amountFen: number;
  readonly request: StockRequest;
}

export interface BatchState {
  /** Stock the owner holds, by `campaignId/tierId`. Mutated as grants are made. */
  readonly share: Map<string, number>;
  /** `campaignId/tierId` of tiers known to be empty in every partition and the pool. */
  readonly empty: ReadonlySet<string>;
  /** `campaignId/activityId/payerId` of payers holding a voucher. Mutated as grants are made. */
  readonly holders: Set<string>;
  /** Budget left, in fen, of budget-capped campaigns only (absent: no cap). Mutated as grants are made. */
  readonly budgetLeft?: Map<string, number>;
}

export interface BatchOutcome {
  /** One decision per attempt, for the prefix that could be decided. */
  readonly decisions: Decision[];
  /** Set when decisions.length < attempts.length: the tier whose share must be refilled. */
  readonly refill?: { readonly campaignId: string; readonly tierId: string };
}

export const tierKey = (campaignId: string, tierId: string): string => `${campaignId}/${tierId}`;
export const holderKey = (campaignId: string, activityId: string, payerId: string): string =>
  `${campaignId}/${activityId}/${payerId}`;

export function decideBatch(
  attempts: readonly BatchAttempt[],
  state: BatchState,
  campaigns: ReadonlyMap<string, Campaign>,
): BatchOutcome {
  const decisions: Decision[] = [];
  for (const attempt of attempts) {
    const { campaignId, activityId, tierIds } = attempt.request;
    const campaign = campaigns.get(campaignId);
    invariant(campaign, `attempt names unknown campaign ${campaignId}`);
    const holder = holderKey(campaignId, activityId, attempt.payerId);
    if (state.holders.has(holder)) {
      decisions.push(rejected("already_redeemed", campaignId, activityId));
      continue;
    }
    let decision: Decision | undefined;
    let budgetShort = false;
    const left = state.budgetLeft?.get(campaignId);
    for (const tierId of tierIds) {
      const key = tierKey(campaignId, tierId);
      const share = state.share.get(key) ?? 0;
      invariant(share >= 0, `share of ${key} below zero: ${share}`);
      const tier = findTier(campaign, tierId);
      invariant(tier, `unknown tier ${key}`);
      if (share === 0 && state.empty.has(key)) continue;
      if (left !== undefined && tier.discountFen > left) {
        // Stock or not, the budget cannot pay this voucher: no refill, try a smaller one.
        budgetShort = true;
        continue;
      }
      if (share > 0) {
        invariant(tier.thresholdFen <= attempt.amountFen, `tier ${key} does not qualify`);
        state.share.set(key, share - 1);
        state.holders.add(holder);
        if (left !== undefined) {
          invariant(left - tier.discountFen >= 0, `budget of ${campaignId} below zero`);
          state.budgetLeft!.set(campaignId, left - tier.discountFen);
        }
        decision = {
          status: "granted",
          campaignId,
          activityId,
          tierId,
          discountFen: tier.discountFen,
          payableFen: attempt.amountFen - tier.discountFen,
        };
        break;
      }
      return { decisions, refill: { campaignId, tierId } };
    }
    decisions.push(decision ?? rejected(budgetShort ? "budget_exhausted" : "sold_out", campaignId, activityId));
  }
  return { decisions };
}
