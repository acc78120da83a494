import type { Kysely } from "kysely";
import type { Database } from "./schema.js";
import { checkSlots } from "./slot-check.js";
import { checkBudget } from "./verify-budget.js";
import { checkRefunds } from "./verify-refunds.js";
import { checkNoStrandedStock } from "./verify-stranded-stock.js";
import { tierReport, type TierReport } from "./verify-tier-report.js";

/**
 * The invariants that the database alone can prove for a campaign. Refunds can return a
 * voucher to its tier, so stock is read in time, not only now:
 *   I1 per tier: held (granted, voucher not returned) <= quota and
 *      held + pool + sum(shares) = quota.
 *   I2 per (activity, payer), by the campaign's refund slot policy (slot-check.ts):
 *      `kept`: at most one grant ever, and no slot released;
 *      `released`: each grant but the last had its voucher returned and its slot released by
 *      the time the next was decided (never two vouchers held at once), and every returned
 *      voucher released its slot.
 *   I6 every sold_out refusal, decided at d: each tier it qualified for held its whole quota
 *      at d (grants decided by d minus vouchers returned by d = quota). Exact, because a
 *      refund returns a voucher only after every batch that read the tier's sold-out mark
 *      has committed (refund-tx.ts). See verify-stranded-stock.ts.
 *   budget: the discounts held stay within the budget, each grant carries its tier's discount,
 *      and a capped campaign's counter agrees with its grants (verify-budget.ts).
 *   refunds: every returned voucher has exactly one refund that returned it, and no payment is
 *      refunded above its amount (verify-refunds.ts).
 * I3, I4 and I5 need the caller's view (what was acknowledged and answered, what was forged):
 * see checkAcknowledged (acknowledged-check.ts), the CLI's checkAnswers and the rush report.
 */
export interface InvariantCheck {
  id: "I1" | "I2" | "I3" | "I4" | "I5" | "I6" | "budget" | "refunds" | "refund-phase";
  ok: boolean;
  detail: string;
}

/** Every check above, one read each, in the order `quanta verify` and the rush report print them. */
export async function verifyDatabaseInvariants(db: Kysely<Database>, campaignId: string): Promise<InvariantCheck[]> {
  return [
    checkStockPerTier(campaignId, await tierReport(db, campaignId)),
    await checkSlots(db, campaignId),
    await checkNoStrandedStock(db, campaignId),
    await checkBudget(db, campaignId),
    await checkRefunds(db, campaignId),
  ];
}

/** I1 on the tiers as they are now. A campaign without tiers fails: there is nothing to prove. */
function checkStockPerTier(campaignId: string, tiers: readonly TierReport[]): InvariantCheck {
  const broken = tiers.filter(
    (t) => t.held > t.quota || t.held + t.remaining !== t.quota || t.remaining < 0 || t.returned > t.granted,
  );
  const returned = tiers.reduce((n, t) => n + t.returned, 0);
  return {
    id: "I1",
    ok: tiers.length > 0 && broken.length === 0,
    detail:
      tiers.length === 0
        ? `no tiers found for campaign ${campaignId}`
        : broken.length === 0
          ? `${tiers.length} tiers: held <= quota and held + remaining = quota (${returned} vouchers returned by refunds)`
          : broken
              .map(
                (t) =>
                  `${t.tierId}: held ${t.held} (granted ${t.granted} - returned ${t.returned}) + remaining ${t.remaining} vs quota ${t.quota}`,
              )
              .join("; "),
  };
}
