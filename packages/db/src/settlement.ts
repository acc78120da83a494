import { sql, type Kysely } from "kysely";
import type { Database, Trx } from "./schema.js";
import { booked, campaignBudget, lineSums, type SettlementAdjustment, type SettlementRow } from "./settlement-lines.js";

/**
 * What the funding bureau and the merchants are owed, from the decision records alone.
 *
 * Inputs: a campaign id (and a day, for one day's report). Rows: per day (the campaign's clock,
 * UTC+8) and merchant, the vouchers granted and their discounts, the vouchers returned by
 * refunds and their discounts, and the net; adjustments: one line per grant or returned voucher
 * booked on a later day than its own because its own day was already settled (the line names
 * that day and the payment or refund). Totals: the budget, what was granted, refunded and spent
 * net, and the leftover the bureau gets back. Everything is integer fen, summed by Postgres from
 * the same rows `quanta verify` audits, and checked against a second sum (grants over the tiers,
 * returns over the payments' return marks) before it is returned: a settlement that does not
 * reconcile throws, it must not be printed.
 * Days: a grant is booked on its payment's day, a returned voucher on its refund's day, unless
 * that day is settled (settlement-booking.ts). A day is settled by closeSettlementDay, once it
 * is over; a settled day's report never changes afterwards, to the byte.
 * Files: this one, the whole campaign's settlement; settlement-day.ts, one day's report and its
 * close; settlement-lines.ts, the rows and adjustments both sum; settlement-csv.ts, the CSV.
 */
export type { SettlementAdjustment, SettlementRow } from "./settlement-lines.js";

export interface Settlement {
  campaignId: string;
  budgetFen: number;
  grantedVouchers: number;
  grantedFen: number;
  returnedVouchers: number;
  refundedFen: number;
  netSpentFen: number;
  leftoverFen: number;
  rows: SettlementRow[];
  adjustments: SettlementAdjustment[];
}

export class SettlementMismatch extends Error {
  override readonly name = "SettlementMismatch";
}

export async function settlement(db: Kysely<Database>, campaignId: string): Promise<Settlement> {
  // One snapshot for every read, so a refund committing meanwhile cannot make the sums disagree.
  return db
    .transaction()
    .setIsolationLevel("repeatable read")
    .execute(async (trx) => {
      const budgetFen = await campaignBudget(trx, campaignId);
      const { rows, adjustments } = await booked(trx, campaignId, null);
      const lines = [...rows, ...adjustments];
      const { netFen: _net, ...sums } = lineSums(lines);
      throwIfUnreconciled(campaignId, sums, await secondSum(trx, campaignId));
      const netSpentFen = sums.grantedFen - sums.refundedFen;
      return { campaignId, budgetFen, ...sums, netSpentFen, leftoverFen: budgetFen - netSpentFen, rows, adjustments };
    });
}

type Sums = Pick<Settlement, "grantedVouchers" | "grantedFen" | "returnedVouchers" | "refundedFen">;
type SecondSum = { vouchers: string; fen: string; returned: string; returned_fen: string };

/** The second sum: grants by tier, returns by the payments' own marks (not by refund rows). */
async function secondSum(trx: Trx, campaignId: string): Promise<SecondSum> {
  const check = await sql<SecondSum>`
    select count(a.*) as vouchers, coalesce(sum(t.discount_fen), 0) as fen,
           count(a.voucher_returned_at) as returned,
           coalesce(sum(t.discount_fen) filter (where a.voucher_returned_at is not null), 0) as returned_fen
      from attempts a join tiers t on t.campaign_id = a.campaign_id and t.id = a.tier_id
     where a.campaign_id = ${campaignId} and a.status = 'granted'`.execute(trx);
  return check.rows[0]!;
}

/** A settlement whose two sums disagree must not be printed. */
function throwIfUnreconciled(campaignId: string, s: Sums, check: SecondSum): void {
  const mismatch =
    s.grantedVouchers !== Number(check.vouchers) ||
    s.grantedFen !== Number(check.fen) ||
    s.returnedVouchers !== Number(check.returned) ||
    s.refundedFen !== Number(check.returned_fen);
  if (mismatch) {
    throw new SettlementMismatch(
      `settlement of ${campaignId} does not reconcile: by merchant and day ${s.grantedVouchers} vouchers / ${s.grantedFen} fen granted, ` +
        `${s.returnedVouchers} / ${s.refundedFen} returned; by tier ${check.vouchers} / ${check.fen} granted, ${check.returned} / ${check.returned_fen} returned`,
    );
  }
}
