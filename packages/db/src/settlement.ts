import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "./schema.js";
import { bookedItems } from "./settlement-booking.js";

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

/** A grant or returned voucher that came in after its own day was settled, booked on `day`. */
export interface SettlementAdjustment extends SettlementRow {
  /** The settled day it belongs to by its own date (the payment's paidAt, the refund's refundedAt). */
  adjustsDay: string;
  acquirerId: string;
  txnId: string;
  /** The refund that returned the voucher; null: the adjustment is a grant. */
  refundId: string | null;
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
  adjustments: SettlementAdjustment[];
}

/** One day's report: what is booked on that day, adjustments included. */
export interface DaySettlement {
  campaignId: string;
  day: string;
  /** When the day was settled (ISO-8601); null: still open, its figures may change. */
  closedAt: string | null;
  grantedVouchers: number;
  grantedFen: number;
  returnedVouchers: number;
  refundedFen: number;
  netFen: number;
  rows: SettlementRow[];
  adjustments: SettlementAdjustment[];
}

export type CloseDayResult =
  | { kind: "closed"; report: DaySettlement }
  /** Closed before: nothing changed; the report is the one it was closed with. */
  | { kind: "already_settled"; report: DaySettlement }
  /** The day has not ended yet on the campaign's clock (by this database's clock): nothing closed. */
  | { kind: "not_over"; endsAt: string };

export class SettlementMismatch extends Error {
  override readonly name = "SettlementMismatch";
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** A calendar day as settlement names it: YYYY-MM-DD, a real date. */
export function isSettlementDay(day: string): boolean {
  return DAY.test(day) && new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) === day;
}

type Trx = Transaction<Database>;
type AmountColumns = { vouchers: string; discount_fen: string; returned: string; refunded_fen: string };

const amounts = (r: AmountColumns) => ({
  vouchers: Number(r.vouchers),
  discountFen: Number(r.discount_fen),
  vouchersReturned: Number(r.returned),
  refundedFen: Number(r.refunded_fen),
  netFen: Number(r.discount_fen) - Number(r.refunded_fen),
});

/** Rows and adjustments booked on `day`, or on every day when it is null. */
async function booked(
  trx: Trx,
  campaignId: string,
  day: string | null,
): Promise<{ rows: SettlementRow[]; adjustments: SettlementAdjustment[] }> {
  const rows = (
    await sql<AmountColumns & { day: string; merchant_id: string }>`
      with ${bookedItems(campaignId, null)}
      select to_char(day, 'YYYY-MM-DD') as day, merchant_id, sum(vouchers) as vouchers, sum(discount_fen) as discount_fen,
             sum(returned) as returned, sum(refunded_fen) as refunded_fen
        from booked
       where day = own_day and (${day}::date is null or day = ${day}::date)
       group by booked.day, merchant_id
       order by booked.day, merchant_id`.execute(trx)
  ).rows.map((r) => ({ day: r.day, merchantId: r.merchant_id, ...amounts(r) }));
  const adjustments = (
    await sql<
      AmountColumns & {
        day: string;
        own_day: string;
        merchant_id: string;
        acquirer_id: string;
        txn_id: string;
        refund_id: string | null;
      }
    >`
      with ${bookedItems(campaignId, null)}
      select to_char(day, 'YYYY-MM-DD') as day, to_char(own_day, 'YYYY-MM-DD') as own_day, merchant_id, acquirer_id, txn_id, refund_id,
             vouchers, discount_fen, returned, refunded_fen
        from booked
       where day <> own_day and (${day}::date is null or day = ${day}::date)
       order by booked.day, booked.own_day, acquirer_id, txn_id, refund_id nulls first`.execute(trx)
  ).rows.map((r) => ({
    day: r.day,
    merchantId: r.merchant_id,
    ...amounts(r),
    adjustsDay: r.own_day,
    acquirerId: r.acquirer_id,
    txnId: r.txn_id,
    refundId: r.refund_id,
  }));
  return { rows, adjustments };
}

async function campaignBudget(trx: Trx, campaignId: string): Promise<number> {
  const campaign = await trx
    .selectFrom("campaigns")
    .select(["id", "budget_fen"])
    .where("id", "=", campaignId)
    .executeTakeFirst();
  if (!campaign) throw new Error(`campaign ${campaignId} is not loaded`);
  return Number(campaign.budget_fen);
}

const total = (lines: readonly SettlementRow[], f: (r: SettlementRow) => number) => lines.reduce((n, r) => n + f(r), 0);

async function dayReport(trx: Trx, campaignId: string, day: string): Promise<DaySettlement> {
  await campaignBudget(trx, campaignId);
  const closed = (
    await sql<{
      closed_at: Date;
    }>`select closed_at from settled_days where campaign_id = ${campaignId} and day = ${day}::date`.execute(trx)
  ).rows[0];
  const { rows, adjustments } = await booked(trx, campaignId, day);
  const lines = [...rows, ...adjustments];
  return {
    campaignId,
    day,
    closedAt: closed ? new Date(closed.closed_at).toISOString() : null,
    grantedVouchers: total(lines, (r) => r.vouchers),
    grantedFen: total(lines, (r) => r.discountFen),
    returnedVouchers: total(lines, (r) => r.vouchersReturned),
    refundedFen: total(lines, (r) => r.refundedFen),
    netFen: total(lines, (r) => r.netFen),
    rows,
    adjustments,
  };
}

/** One day's report: settled (read from what its close booked) or still open. */
export async function settlementDay(db: Kysely<Database>, campaignId: string, day: string): Promise<DaySettlement> {
  if (!isSettlementDay(day)) throw new Error(`${day} is not a day (YYYY-MM-DD)`);
  // One snapshot for every read, so a refund committing meanwhile cannot make the parts disagree.
  return db
    .transaction()
    .setIsolationLevel("repeatable read")
    .execute((trx) => dayReport(trx, campaignId, day));
}

/**
 * Settles one day of a campaign: books every item now booked on it (settled_entries) and marks
 * it settled, in one transaction, and answers the day's report as it will stay.
 * Closes are serialized by a lock on settled_days that only closes take; writers of grants and
 * refunds are not waited for: one that commits after the booking is not in the day, and is
 * booked on its arrival day instead (settlement-booking.ts), so the day holds exactly what its
 * report showed. A day that has not ended on the campaign's clock is not closed.
 */
export async function closeSettlementDay(
  db: Kysely<Database>,
  campaignId: string,
  day: string,
): Promise<CloseDayResult> {
  if (!isSettlementDay(day)) throw new Error(`${day} is not a day (YYYY-MM-DD)`);
  return db.transaction().execute(async (trx) => {
    await sql`lock table settled_days in share row exclusive mode`.execute(trx);
    await campaignBudget(trx, campaignId);
    const state = (
      await sql<{ settled: boolean; over: boolean; ends_at: Date }>`
        select exists (select 1 from settled_days where campaign_id = ${campaignId} and day = ${day}::date) as settled,
               now() >= (${day}::date + 1)::timestamp at time zone 'Asia/Shanghai' as over,
               (${day}::date + 1)::timestamp at time zone 'Asia/Shanghai' as ends_at`.execute(trx)
    ).rows[0]!;
    if (state.settled) return { kind: "already_settled", report: await dayReport(trx, campaignId, day) };
    if (!state.over) return { kind: "not_over", endsAt: new Date(state.ends_at).toISOString() };
    await sql`insert into settled_days (campaign_id, day) values (${campaignId}, ${day}::date)`.execute(trx);
    await sql`
      with ${bookedItems(campaignId, day)}
      insert into settled_entries (campaign_id, day, acquirer_id, txn_id, refund_id)
      select ${campaignId}, ${day}::date, acquirer_id, txn_id, refund_id from booked where entry_day is null and day = ${day}::date`.execute(
      trx,
    );
    return { kind: "closed", report: await dayReport(trx, campaignId, day) };
  });
}

export async function settlement(db: Kysely<Database>, campaignId: string): Promise<Settlement> {
  // One snapshot for every read, so a refund committing meanwhile cannot make the sums disagree.
  return db
    .transaction()
    .setIsolationLevel("repeatable read")
    .execute(async (trx) => {
      const budgetFen = await campaignBudget(trx, campaignId);
      const { rows, adjustments } = await booked(trx, campaignId, null);
      // The second sum: grants by tier, returns by the payments' own marks (not by refund rows).
      const check = (
        await sql<{ vouchers: string; fen: string; returned: string; returned_fen: string }>`
        select count(a.*) as vouchers, coalesce(sum(t.discount_fen), 0) as fen,
               count(a.voucher_returned_at) as returned,
               coalesce(sum(t.discount_fen) filter (where a.voucher_returned_at is not null), 0) as returned_fen
          from attempts a join tiers t on t.campaign_id = a.campaign_id and t.id = a.tier_id
         where a.campaign_id = ${campaignId} and a.status = 'granted'`.execute(trx)
      ).rows[0]!;
      const lines = [...rows, ...adjustments];
      const grantedVouchers = total(lines, (r) => r.vouchers);
      const grantedFen = total(lines, (r) => r.discountFen);
      const returnedVouchers = total(lines, (r) => r.vouchersReturned);
      const refundedFen = total(lines, (r) => r.refundedFen);
      const mismatch =
        grantedVouchers !== Number(check.vouchers) ||
        grantedFen !== Number(check.fen) ||
        returnedVouchers !== Number(check.returned) ||
        refundedFen !== Number(check.returned_fen);
      if (mismatch) {
        throw new SettlementMismatch(
          `settlement of ${campaignId} does not reconcile: by merchant and day ${grantedVouchers} vouchers / ${grantedFen} fen granted, ` +
            `${returnedVouchers} / ${refundedFen} returned; by tier ${check.vouchers} / ${check.fen} granted, ${check.returned} / ${check.returned_fen} returned`,
        );
      }
      const netSpentFen = grantedFen - refundedFen;
      return {
        campaignId,
        budgetFen,
        grantedVouchers,
        grantedFen,
        returnedVouchers,
        refundedFen,
        netSpentFen,
        leftoverFen: budgetFen - netSpentFen,
        rows,
        adjustments,
      };
    });
}

/**
 * RFC 4180 CSV, amounts in fen (integers) and in CNY (two decimals) for people: each day's
 * merchant rows, then its adjustments, which also fill the last four columns (the settled day
 * adjusted, and the payment or refund: refund_id empty for a grant).
 */
export function settlementCsv(s: Pick<Settlement, "rows" | "adjustments">): string {
  const cny = (fen: number) => (fen / 100).toFixed(2);
  const field = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const amountsOf = (r: SettlementRow) => [
    r.vouchers,
    r.discountFen,
    r.vouchersReturned,
    r.refundedFen,
    r.netFen,
    cny(r.netFen),
  ];
  const lines = [
    "day,merchant_id,vouchers,discount_fen,vouchers_returned,refunded_fen,net_fen,net_cny,adjusts_day,acquirer_id,txn_id,refund_id",
  ];
  const byDay = new Map<string, string[]>();
  const add = (day: string, line: string) => {
    const dayLines = byDay.get(day);
    if (dayLines) dayLines.push(line);
    else byDay.set(day, [line]);
  };
  for (const r of s.rows) add(r.day, [r.day, field(r.merchantId), ...amountsOf(r), "", "", "", ""].join(","));
  for (const a of s.adjustments) {
    add(
      a.day,
      [
        a.day,
        field(a.merchantId),
        ...amountsOf(a),
        a.adjustsDay,
        field(a.acquirerId),
        field(a.txnId),
        field(a.refundId ?? ""),
      ].join(","),
    );
  }
  for (const day of [...byDay.keys()].sort()) for (const line of byDay.get(day)!) lines.push(line);
  return `${lines.join("\r\n")}\r\n`;
}
