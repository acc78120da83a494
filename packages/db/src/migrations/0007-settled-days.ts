import { sql, type Kysely } from "kysely";

/**
 * Settled days (issue #19 item 6). A day of a campaign's settlement is settled when an operator
 * closes it (`quanta settle --day D --close`), once the day is over; after that its report never
 * changes. Two tables:
 *   settled_days     the closed days, with when each was closed;
 *   settled_entries  what each closed day's report holds: every grant (refund_id null) and
 *                    every refund that returned a voucher, booked on that day when it closed.
 * A settled day's report is read from its entries, joined to columns that never change (the
 * payment's merchant, discount and paidAt, the refund's own row), so it is the same to the byte
 * however late a back-dated refund or payment for that day arrives. Such an item has no entry;
 * it is booked on the day it arrived (its refund's received_at, its grant's decided_at) and
 * shows there as an adjustment naming the day it belongs to (packages/db/src/settlement.ts).
 * The unique indexes book an item once: on one day, for good.
 * Trade-off: the entries reference the payment's row, so while a close is inserting them a
 * refund of one of those payments waits for it (KEY SHARE against the refund's FOR UPDATE):
 * once a day, for as long as one day's report takes.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table settled_days (
              campaign_id text not null references campaigns (id),
              day date not null,
              closed_at timestamptz not null default clock_timestamp(),
              primary key (campaign_id, day))`.execute(db);
  await sql`create table settled_entries (
              campaign_id text not null,
              day date not null,
              acquirer_id text not null,
              txn_id text not null,
              refund_id text,
              foreign key (campaign_id, day) references settled_days (campaign_id, day),
              foreign key (acquirer_id, txn_id) references attempts (acquirer_id, txn_id),
              foreign key (acquirer_id, refund_id) references refunds (acquirer_id, refund_id))`.execute(db);
  await sql`create unique index settled_entries_one_grant on settled_entries (acquirer_id, txn_id) where refund_id is null`.execute(
    db,
  );
  await sql`create unique index settled_entries_one_refund on settled_entries (acquirer_id, refund_id) where refund_id is not null`.execute(
    db,
  );
  await sql`create index settled_entries_by_day on settled_entries (campaign_id, day)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists settled_entries`.execute(db);
  await sql`drop table if exists settled_days`.execute(db);
}
