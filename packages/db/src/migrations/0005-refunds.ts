import { sql, type Kysely } from "kysely";

/**
 * Refunds (issue #7). A refund is recorded once per (acquirer, refundId); the payment it names
 * keeps its decision (I4: the same txnId always gets the same answer) and gains two marks:
 *   voucher_returned_at  the voucher went back to its tier's pool (stock grantable again);
 *   slot_released_at     the payer's one-grant-per-activity slot was given back (campaign
 *                        policy refund_slot = 'released'); only ever with a returned voucher.
 * With stock able to come back, the invariants read:
 *   I1  held (granted, voucher not returned) + pool + sum(shares) = quota;
 *   I2  one granted attempt per (payer, campaign, activity) whose slot is not released: the
 *       partial unique index now excludes released slots, so a payer whose slot came back can be
 *       granted again, and nobody can hold two;
 *   no voucher is returned twice: one 'voucher_returned' refund per payment (partial unique
 *   index), and the marks are set only on granted rows (CHECKs).
 * A refund row holds what the refund itself says and decided; the payment's campaign, tier,
 * merchant and discount are read from the payment's row (they never change), not copied.
 * refunded_total_fen is kept although it is a running sum: a repeated refund must get the answer
 * it got the first time, whatever refunds came after.
 * Limit: at most 32 refunds per payment (refund-tx), so a payment's running sum stays small.
 * Trade-off: the marks live on the attempt row (the unique index must see them), so a refund
 * updates a row the hot path otherwise only inserts; refunds are rare next to payments.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table campaigns add column refund_slot text not null default 'kept' check (refund_slot in ('kept', 'released'))`.execute(
    db,
  );
  await sql`alter table attempts add column voucher_returned_at timestamptz`.execute(db);
  await sql`alter table attempts add column slot_released_at timestamptz`.execute(db);
  await sql`alter table attempts add constraint attempts_return_marks check (
              (voucher_returned_at is null or status = 'granted')
              and (slot_released_at is null or voucher_returned_at is not null))`.execute(db);
  await sql`drop index attempts_one_grant_per_payer`.execute(db);
  await sql`create unique index attempts_one_grant_per_payer on attempts (payer_id, campaign_id, activity_id)
              where status = 'granted' and slot_released_at is null`.execute(db);
  await sql`create table refunds (
              acquirer_id text not null,
              refund_id text not null,
              txn_id text not null,
              body_hash text not null,
              amount_fen bigint not null check (amount_fen > 0),
              refunded_at timestamptz not null,
              received_at timestamptz not null default clock_timestamp(),
              outcome text not null check (outcome in ('voucher_returned', 'voucher_kept', 'no_voucher')),
              reason text check (reason is null or reason in ('payment_rejected', 'voucher_already_returned')),
              refunded_total_fen bigint not null check (refunded_total_fen >= amount_fen),
              slot_released boolean not null default false,
              primary key (acquirer_id, refund_id),
              foreign key (acquirer_id, txn_id) references attempts (acquirer_id, txn_id),
              check ((outcome = 'no_voucher') = (reason is not null)),
              check (not slot_released or outcome = 'voucher_returned'))`.execute(db);
  await sql`create index refunds_by_txn on refunds (acquirer_id, txn_id)`.execute(db);
  await sql`create unique index refunds_one_return_per_txn on refunds (acquirer_id, txn_id) where outcome = 'voucher_returned'`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists refunds`.execute(db);
  await sql`drop index if exists attempts_one_grant_per_payer`.execute(db);
  await sql`create unique index attempts_one_grant_per_payer on attempts (payer_id, campaign_id, activity_id) where status = 'granted'`.execute(
    db,
  );
  await sql`alter table attempts drop constraint if exists attempts_return_marks`.execute(db);
  await sql`alter table attempts drop column if exists slot_released_at`.execute(db);
  await sql`alter table attempts drop column if exists voucher_returned_at`.execute(db);
  await sql`alter table campaigns drop column if exists refund_slot`.execute(db);
}
