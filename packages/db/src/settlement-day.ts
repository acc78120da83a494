import { sql, type Kysely } from "kysely";
import type { Database, Trx } from "./schema.js";
import { bookedItems } from "./settlement-booking.js";
import { booked, campaignBudget, lineSums, type SettlementAdjustment, type SettlementRow } from "./settlement-lines.js";

/**
 * Settlement by day (the campaign's clock, UTC+8): one day's report, what is booked on that day,
 * adjustments included, open or settled; and closing a day once it is over, after which its
 * report never changes. What a settlement is and how items are booked: settlement.ts,
 * settlement-booking.ts.
 */
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

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** A calendar day as settlement names it: YYYY-MM-DD, a real date. */
export function isSettlementDay(day: string): boolean {
  return DAY.test(day) && new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) === day;
}

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
    ...lineSums(lines),
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
