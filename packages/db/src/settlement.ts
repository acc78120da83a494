import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * What the funding bureau and the merchants are owed, from the decision records alone.
 *
 * Inputs: a campaign id. Rows: per merchant and per day (the campaign's clock, UTC+8), the
 * vouchers granted and their discounts (by payment day), the vouchers returned by refunds and
 * their discounts (by refund day), and the net. Totals: the budget, what was granted, refunded
 * and spent net, and the leftover the bureau gets back. Everything is integer fen, summed by
 * Postgres from the same rows `quanta verify` audits, and checked against a second sum (grants
 * over the tiers, returns over the payments' return marks) before it is returned: a settlement
 * that does not reconcile throws, it must not be printed.
 * Trade-off: a refund is settled on the day it happened, not on its payment's day, so a closed
 * day's figures never change afterwards.
 */
export interface SettlementRow {
  day: string;
  merchantId: string;
  vouchers: number;
  discountFen: number;
  vouchersReturned: number;
  refundedFen: number;
  netFen: number;
}

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
}

export class SettlementMismatch extends Error {
  override readonly name = "SettlementMismatch";
}

export async function settlement(db: Kysely<Database>, campaignId: string): Promise<Settlement> {
  // One snapshot for every read, so a refund committing meanwhile cannot make the sums disagree.
  return db.transaction().setIsolationLevel("repeatable read").execute(async (trx) => {
    const campaign = await trx.selectFrom("campaigns").select(["id", "budget_fen"]).where("id", "=", campaignId).executeTakeFirst();
    if (!campaign) throw new Error(`campaign ${campaignId} is not loaded`);
    const rows = (
      await sql<{ day: string; merchant_id: string; vouchers: string; discount_fen: string; returned: string; refunded_fen: string }>`
        with granted as (
          select to_char(paid_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD') as day, merchant_id,
                 count(*) as vouchers, sum(discount_fen) as discount_fen
            from attempts where campaign_id = ${campaignId} and status = 'granted'
           group by 1, 2),
        refunded as (
          select to_char(r.refunded_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD') as day, a.merchant_id,
                 count(*) as returned, sum(a.discount_fen) as refunded_fen
            from refunds r join attempts a on a.acquirer_id = r.acquirer_id and a.txn_id = r.txn_id
           where a.campaign_id = ${campaignId} and r.outcome = 'voucher_returned'
           group by 1, 2)
        select day, merchant_id, coalesce(g.vouchers, 0) as vouchers, coalesce(g.discount_fen, 0) as discount_fen,
               coalesce(r.returned, 0) as returned, coalesce(r.refunded_fen, 0) as refunded_fen
          from granted g full join refunded r using (day, merchant_id)
         order by 1, 2`.execute(trx)
    ).rows.map((r) => ({
      day: r.day,
      merchantId: r.merchant_id,
      vouchers: Number(r.vouchers),
      discountFen: Number(r.discount_fen),
      vouchersReturned: Number(r.returned),
      refundedFen: Number(r.refunded_fen),
      netFen: Number(r.discount_fen) - Number(r.refunded_fen),
    }));
    // The second sum: grants by tier, returns by the payments' own marks (not by refund rows).
    const check = (
      await sql<{ vouchers: string; fen: string; returned: string; returned_fen: string }>`
        select count(a.*) as vouchers, coalesce(sum(t.discount_fen), 0) as fen,
               count(a.voucher_returned_at) as returned,
               coalesce(sum(t.discount_fen) filter (where a.voucher_returned_at is not null), 0) as returned_fen
          from attempts a join tiers t on t.campaign_id = a.campaign_id and t.id = a.tier_id
         where a.campaign_id = ${campaignId} and a.status = 'granted'`.execute(trx)
    ).rows[0]!;
    const sum = (f: (r: SettlementRow) => number) => rows.reduce((n, r) => n + f(r), 0);
    const grantedVouchers = sum((r) => r.vouchers);
    const grantedFen = sum((r) => r.discountFen);
    const returnedVouchers = sum((r) => r.vouchersReturned);
    const refundedFen = sum((r) => r.refundedFen);
    const mismatch =
      grantedVouchers !== Number(check.vouchers) || grantedFen !== Number(check.fen) ||
      returnedVouchers !== Number(check.returned) || refundedFen !== Number(check.returned_fen);
    if (mismatch) {
      throw new SettlementMismatch(
        `settlement of ${campaignId} does not reconcile: by merchant and day ${grantedVouchers} vouchers / ${grantedFen} fen granted, ` +
          `${returnedVouchers} / ${refundedFen} returned; by tier ${check.vouchers} / ${check.fen} granted, ${check.returned} / ${check.returned_fen} returned`,
      );
    }
    const netSpentFen = grantedFen - refundedFen;
    return {
      campaignId,
      budgetFen: Number(campaign.budget_fen),
      grantedVouchers,
      grantedFen,
      returnedVouchers,
      refundedFen,
      netSpentFen,
      leftoverFen: Number(campaign.budget_fen) - netSpentFen,
      rows,
    };
  });
}

/** RFC 4180 CSV, amounts in fen (integers) and in CNY (two decimals) for people. */
export function settlementCsv(s: Settlement): string {
  const cny = (fen: number) => (fen / 100).toFixed(2);
  const lines = ["day,merchant_id,vouchers,discount_fen,vouchers_returned,refunded_fen,net_fen,net_cny"];
  for (const r of s.rows) {
    const merchant = /[",\n]/.test(r.merchantId) ? `"${r.merchantId.replace(/"/g, '""')}"` : r.merchantId;
    lines.push([r.day, merchant, r.vouchers, r.discountFen, r.vouchersReturned, r.refundedFen, r.netFen, cny(r.netFen)].join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}
