import { sql, type Kysely, type Selectable } from "kysely";
import { checkRefundedAt, decideRefund, invariant, type RefundOutcome, type RefundSlotPolicy } from "@quanta/domain";
import type { Database, RefundTable, Trx } from "./schema.js";

/**
 * One refund, in one READ COMMITTED transaction.
 *
 * Inputs: the acquirer, the refund (id, txn, amount, time) and its body hash.
 * Steps:
 *   1. a refund stored under this id is answered from its row (the caller compares hashes:
 *      the same body gets the same answer, another body is a conflict);
 *   2. lock the payment's row (refunds of one payment are serialized here, so their running
 *      total is exact); no stored decision: the caller says unknown or pending;
 *   3. bound refundedAt (domain checkRefundedAt): not before the payment's paid_at, not past
 *      the arrival (this database's clock, stored as received_at) plus the allowed skew;
 *      settlement books refunds by refundedAt, so an unbounded one could land on any day;
 *   4. count and sum the payment's earlier refunds and decide (domain decideRefund; at most
 *      REFUNDS_PER_PAYMENT_MAX refunds per payment);
 *   5. when the voucher goes back: the capped campaign's budget row gets the discount back,
 *      the tier row gets the voucher into its pool and loses its sold-out mark, then the
 *      payment's row is marked returned (and its slot released, by policy), stamped after the
 *      tier row is locked;
 *   6. store the refund with its outcome.
 * Lock order: payment row, capped campaign row, tier row. Batch transactions take the capped
 * campaign row before anything of a tier, and hold a KEY SHARE lock on the tier rows they saw
 * sold out until they commit; this transaction's explicit FOR UPDATE on the tier row (a plain
 * UPDATE would only take FOR NO KEY UPDATE, which KEY SHARE does not block) therefore waits
 * for every batch that answered sold_out from the mark, and every later batch sees the mark
 * gone. That is what makes I6 exact in time: a sold_out is never stamped after the voucher
 * that would have served it came back.
 * Trade-off: the returned voucher goes to the pool, not to a partition's share: the next
 * attempt that needs it pays one refill transaction, and no partition is favoured.
 */
export type RefundRow = Selectable<RefundTable>;

/** The refunded payment as an answer needs it (it never changes once decided). */
export interface RefundedPayment {
  amountFen: number;
  tierId: string | null;
  discountFen: number | null;
}

export type RefundTxResult =
  /** This refund id was stored before (same body or not: compare body_hash). */
  | { kind: "stored"; row: RefundRow; payment: RefundedPayment }
  | { kind: "recorded"; row: RefundRow; payment: RefundedPayment }
  /** No decision is stored for the txn. */
  | { kind: "no_payment" }
  /** Refunds would add up to more than the payment's amount; nothing was stored. */
  | { kind: "exceeds_payment"; refundedBeforeFen: number; paymentAmountFen: number }
  /** The payment has REFUNDS_PER_PAYMENT_MAX refunds already; nothing was stored. */
  | { kind: "too_many_refunds"; refundsBefore: number }
  /** refundedAt is before the payment or too far after the refund's arrival; nothing was stored. */
  | { kind: "refunded_at_out_of_bounds"; bound: "before_payment" | "in_the_future"; message: string };

export interface RefundInput {
  acquirerId: string;
  refundId: string;
  txnId: string;
  amountFen: number;
  refundedAtMs: number;
  bodyHash: string;
}

class ConcurrentRefund extends Error {
  // A unique violation's SQLSTATE, so withRetry treats it as "re-read and answer from it".
  readonly code = "23505";
}

type PaymentRow = {
  status: "granted" | "rejected";
  amount_fen: number;
  paid_at: Date;
  received_at: Date;
  campaign_id: string | null;
  tier_id: string | null;
  discount_fen: number | null;
  voucher_returned: boolean;
  threshold_fen: number | null;
  refund_slot: RefundSlotPolicy | null;
  budget_capped: boolean | null;
};

const refunded = (p: Pick<PaymentRow, "amount_fen" | "tier_id" | "discount_fen">): RefundedPayment => ({
  amountFen: Number(p.amount_fen),
  tierId: p.tier_id,
  discountFen: p.discount_fen === null ? null : Number(p.discount_fen),
});

export async function refundTx(db: Kysely<Database>, input: RefundInput): Promise<RefundTxResult> {
  return db.transaction().execute(async (trx) => {
    const stored = await storedRefund(trx, input);
    if (stored) return stored;
    const payment = await lockPayment(trx, input);
    if (!payment) return { kind: "no_payment" };
    // Arrival is read once, after the payment's lock, and stored as the refund's received_at: the
    // bound is checked against the time settlement will later see.
    const receivedAt = new Date(payment.received_at);
    const when = checkRefundedAt(input.refundedAtMs, new Date(payment.paid_at).getTime(), receivedAt.getTime());
    if (!when.ok) return { kind: "refunded_at_out_of_bounds", bound: when.bound, message: when.message };

    // The payment's row is locked: its refunds so far cannot change under us.
    const before = await refundsSoFar(trx, input);
    const amountFen = Number(payment.amount_fen);
    const outcome = decideRefund(
      payment.status === "granted"
        ? {
            status: "granted",
            amountFen,
            thresholdFen: Number(payment.threshold_fen),
            discountFen: Number(payment.discount_fen),
            voucherReturned: payment.voucher_returned,
          }
        : { status: "rejected", amountFen },
      before,
      input.amountFen,
      payment.refund_slot ?? "kept",
    );
    if (outcome.kind === "exceeds_payment")
      return { kind: "exceeds_payment", refundedBeforeFen: before.fen, paymentAmountFen: amountFen };
    if (outcome.kind === "too_many_refunds") return { kind: "too_many_refunds", refundsBefore: outcome.refundsBefore };
    if (outcome.kind === "voucher_returned") await returnVoucher(trx, input, payment, outcome);

    const row = await insertRefund(trx, input, receivedAt, outcome);
    // The same refund id stored by a concurrent call since step 1: roll back, re-read, answer from it.
    if (!row) throw new ConcurrentRefund(`refund ${input.refundId} was stored concurrently`);
    return { kind: "recorded", row, payment: refunded(payment) };
  });
}

/** The outcomes that store a refund. */
type StoredOutcome = Exclude<RefundOutcome, { kind: "exceeds_payment" | "too_many_refunds" }>;

/** Step 1: a refund stored under this id, with the payment it refunded. */
async function storedRefund(trx: Trx, input: RefundInput): Promise<RefundTxResult | undefined> {
  const stored = (
    await sql<
      RefundRow & { payment_amount_fen: number; payment_tier_id: string | null; payment_discount_fen: number | null }
    >`
      select r.*, a.amount_fen as payment_amount_fen, a.tier_id as payment_tier_id, a.discount_fen as payment_discount_fen
        from refunds r join attempts a on a.acquirer_id = r.acquirer_id and a.txn_id = r.txn_id
       where r.acquirer_id = ${input.acquirerId} and r.refund_id = ${input.refundId}`.execute(trx)
  ).rows[0];
  if (!stored) return undefined;
  const { payment_amount_fen, payment_tier_id, payment_discount_fen, ...row } = stored;
  return {
    kind: "stored",
    row,
    payment: refunded({ amount_fen: payment_amount_fen, tier_id: payment_tier_id, discount_fen: payment_discount_fen }),
  };
}

/** Step 2: the payment's row, locked (its refunds are serialized here), with its tier and campaign. */
async function lockPayment(trx: Trx, input: RefundInput): Promise<PaymentRow | undefined> {
  return (
    await sql<PaymentRow>`
      select a.status, a.amount_fen, a.paid_at, clock_timestamp() as received_at, a.campaign_id, a.tier_id, a.discount_fen,
             a.voucher_returned_at is not null as voucher_returned, t.threshold_fen, c.refund_slot, c.budget_capped
        from attempts a
        left join tiers t on t.campaign_id = a.campaign_id and t.id = a.tier_id
        left join campaigns c on c.id = a.campaign_id
       where a.acquirer_id = ${input.acquirerId} and a.txn_id = ${input.txnId}
         for update of a`.execute(trx)
  ).rows[0];
}

/** Step 4's input: how many refunds the payment has had, and their sum. */
async function refundsSoFar(trx: Trx, input: RefundInput): Promise<{ count: number; fen: number }> {
  const before = (
    await sql<{ n: string; fen: string }>`select count(*) as n, coalesce(sum(amount_fen), 0) as fen from refunds
                                           where acquirer_id = ${input.acquirerId} and txn_id = ${input.txnId}`.execute(
      trx,
    )
  ).rows[0]!;
  return { count: Number(before.n), fen: Number(before.fen) };
}

/** Step 5, in the lock order: the capped campaign's budget, the tier (FOR UPDATE), then the payment's mark. */
async function returnVoucher(
  trx: Trx,
  input: RefundInput,
  payment: PaymentRow,
  outcome: Extract<StoredOutcome, { kind: "voucher_returned" }>,
): Promise<void> {
  const campaignId = payment.campaign_id!;
  const tierId = payment.tier_id!;
  if (payment.budget_capped) {
    const budget = await sql`update campaigns set budget_left_fen = budget_left_fen + ${outcome.discountReturnedFen}
                              where id = ${campaignId} returning budget_left_fen`.execute(trx);
    invariant(budget.rows.length === 1, `capped campaign ${campaignId} vanished during a refund`);
  }
  // FOR UPDATE explicitly: the UPDATE alone takes FOR NO KEY UPDATE, which does not conflict with
  // the KEY SHARE that batches hold on a sold-out mark, and would not wait for them.
  const locked = await sql`select 1 from tiers where campaign_id = ${campaignId} and id = ${tierId} for update`.execute(
    trx,
  );
  invariant(locked.rows.length === 1, `tier ${campaignId}/${tierId} vanished during a refund`);
  await sql`update tiers set pool = pool + 1, sold_out_at = null where campaign_id = ${campaignId} and id = ${tierId}`.execute(
    trx,
  );
  const marked = await sql`update attempts set voucher_returned_at = clock_timestamp(),
                                  slot_released_at = case when ${outcome.slotReleased} then clock_timestamp() end
                            where acquirer_id = ${input.acquirerId} and txn_id = ${input.txnId} and voucher_returned_at is null`.execute(
    trx,
  );
  invariant(Number(marked.numAffectedRows ?? 0) === 1, `payment ${input.txnId}'s voucher was returned twice`);
}

/** Step 6: the refund with its outcome; nothing when the same refund id was stored since step 1. */
async function insertRefund(
  trx: Trx,
  input: RefundInput,
  receivedAt: Date,
  outcome: StoredOutcome,
): Promise<RefundRow | undefined> {
  return (
    await sql<RefundRow>`
      insert into refunds (acquirer_id, refund_id, txn_id, body_hash, amount_fen, refunded_at, received_at, outcome, reason, refunded_total_fen, slot_released)
      values (${input.acquirerId}, ${input.refundId}, ${input.txnId}, ${input.bodyHash}, ${input.amountFen}, ${new Date(input.refundedAtMs)}, ${receivedAt},
              ${outcome.kind}, ${outcome.kind === "no_voucher" ? outcome.reason : null}, ${outcome.refundedTotalFen},
              ${outcome.kind === "voucher_returned" && outcome.slotReleased})
      on conflict (acquirer_id, refund_id) do nothing
      returning *`.execute(trx)
  ).rows[0];
}
