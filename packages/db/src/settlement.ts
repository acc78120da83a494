import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * What the funding bureau and the merchants are owed, from the decision records alone.
 *
 * Inputs: a campaign id. Rows: per merchant and per payment day (the campaign's clock, UTC+8),
 * the vouchers granted and their discounts, net of refunds. Totals: the budget, what was
 * granted, refunded and spent net, and the leftover the bureau gets back. Everything is integer
 * fen, summed by Postgres from the same rows `quanta verify` audits, and checked against a
 * second sum over the tiers before it is returned (a mismatch throws: a settlement that does not
 * reconcile must not be printed).
 * Refunds do not exist yet (issue #7): refunded is 0 and net equals granted.
 */
export interface SettlementRow {
  day: string;
  merchantId: string;
  vouchers: number;
  discountFen: number;
  refundedFen: number;
  netFen: number;
}

export interface Settlement {
  campaignId: string;
  budgetFen: number;
  grantedVouchers: number;
  grantedFen: number;
  refundedFen: number;
  netSpentFen: number;
  leftoverFen: number;
  rows: SettlementRow[];
}

export class SettlementMismatch extends Error {
  override readonly name = "SettlementMismatch";
}

export async function settlement(db: Kysely<Database>, campaignId: string): Promise<Settlement> {
  const campaign = await db.selectFrom("campaigns").select(["id", "budget_fen"]).where("id", "=", campaignId).executeTakeFirst();
  if (!campaign) throw new Error(`campaign ${campaignId} is not loaded`);
  const rows = (
    await sql<{ day: string; merchant_id: string; vouchers: string; discount_fen: string }>`
      select to_char(paid_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD') as day, merchant_id,
             count(*) as vouchers, sum(discount_fen) as discount_fen
        from attempts
       where campaign_id = ${campaignId} and status = 'granted'
       group by 1, 2
       order by 1, 2`.execute(db)
  ).rows.map((r) => ({
    day: r.day,
    merchantId: r.merchant_id,
    vouchers: Number(r.vouchers),
    discountFen: Number(r.discount_fen),
    refundedFen: 0,
    netFen: Number(r.discount_fen),
  }));
  const byTier = (
    await sql<{ vouchers: string; fen: string }>`
      select count(a.*) as vouchers, coalesce(sum(t.discount_fen), 0) as fen
        from attempts a join tiers t on t.campaign_id = a.campaign_id and t.id = a.tier_id
       where a.campaign_id = ${campaignId} and a.status = 'granted'`.execute(db)
  ).rows[0]!;
  const grantedVouchers = rows.reduce((n, r) => n + r.vouchers, 0);
  const grantedFen = rows.reduce((n, r) => n + r.discountFen, 0);
  if (grantedVouchers !== Number(byTier.vouchers) || grantedFen !== Number(byTier.fen)) {
    throw new SettlementMismatch(
      `settlement of ${campaignId} does not reconcile: ${grantedVouchers} vouchers / ${grantedFen} fen by merchant and day, ` +
        `${byTier.vouchers} / ${byTier.fen} by tier`,
    );
  }
  const refundedFen = 0;
  const netSpentFen = grantedFen - refundedFen;
  return {
    campaignId,
    budgetFen: Number(campaign.budget_fen),
    grantedVouchers,
    grantedFen,
    refundedFen,
    netSpentFen,
    leftoverFen: Number(campaign.budget_fen) - netSpentFen,
    rows,
  };
}

/** RFC 4180 CSV, amounts in fen (integers) and in CNY (two decimals) for people. */
export function settlementCsv(s: Settlement): string {
  const cny = (fen: number) => (fen / 100).toFixed(2);
  const lines = ["day,merchant_id,vouchers,discount_fen,refunded_fen,net_fen,net_cny"];
  for (const r of s.rows) {
    const merchant = /[",\n]/.test(r.merchantId) ? `"${r.merchantId.replace(/"/g, '""')}"` : r.merchantId;
    lines.push([r.day, merchant, r.vouchers, r.discountFen, r.refundedFen, r.netFen, cny(r.netFen)].join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}
