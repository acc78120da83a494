import { invariant } from "./assert.js";
import type { Fen } from "./money.js";

/**
 * What one refund does to the voucher of the payment it names.
 *
 * Inputs: the payment as decided (granted with its tier's threshold and discount, or rejected),
 * whether its voucher was already returned, the amount refunded by earlier refunds of the same
 * payment, this refund's amount, and the campaign's slot policy.
 *
 * States of a granted payment's voucher: held -> returned (once, for good). A refund moves it
 * when what is left of the payment (amount - every refund so far) no longer meets the tier's
 * threshold: a full refund always, a partial one only when it drops below the threshold. The
 * returned voucher goes back to its tier's stock; under slot policy `released` the payer may
 * be granted again in that activity, under `kept` (the seed's "每人参加一次") they may not.
 *
 * Trade-off: a partial refund that drops below the threshold returns the whole voucher instead
 * of moving the payment down to a lower tier: a voucher is never exchanged for another, so
 * stock and budget only ever move by whole vouchers of one tier, and the acquirer nets the
 * discount out of the money it returns.
 */
export type RefundSlotPolicy = "kept" | "released";

/** Refunds one payment may have: each is at least a fen, so without a bound one payment could carry millions. */
export const REFUNDS_PER_PAYMENT_MAX = 32;

export type RefundPayment =
  | {
      readonly status: "granted";
      readonly amountFen: Fen;
      readonly thresholdFen: Fen;
      readonly discountFen: Fen;
      readonly voucherReturned: boolean;
    }
  | { readonly status: "rejected"; readonly amountFen: Fen };

export type RefundOutcome =
  /** This refund returned the voucher to its tier's stock. */
  | {
      readonly kind: "voucher_returned";
      readonly refundedTotalFen: Fen;
      readonly discountReturnedFen: Fen;
      readonly slotReleased: boolean;
    }
  /** A partial refund: what is left of the payment still meets the tier's threshold. */
  | { readonly kind: "voucher_kept"; readonly refundedTotalFen: Fen; readonly remainingFen: Fen }
  /** Nothing to return: the payment got no voucher, or an earlier refund returned it. */
  | {
      readonly kind: "no_voucher";
      readonly refundedTotalFen: Fen;
      readonly reason: "payment_rejected" | "voucher_already_returned";
    }
  /** Refunds would add up to more than was paid: refused, nothing recorded. */
  | { readonly kind: "exceeds_payment"; readonly refundedBeforeFen: Fen; readonly amountFen: Fen }
  /** The payment already has REFUNDS_PER_PAYMENT_MAX refunds: refused, nothing recorded. */
  | { readonly kind: "too_many_refunds"; readonly refundsBefore: number };

/** What earlier refunds of the same payment add up to. */
export interface RefundsBefore {
  readonly count: number;
  readonly fen: Fen;
}

export function decideRefund(
  payment: RefundPayment,
  before: RefundsBefore,
  amountFen: Fen,
  slot: RefundSlotPolicy,
): RefundOutcome {
  const refundedBeforeFen = before.fen;
  invariant(Number.isSafeInteger(amountFen) && amountFen > 0, `refund amount must be a positive integer: ${amountFen}`);
  invariant(
    refundedBeforeFen >= 0 && refundedBeforeFen <= payment.amountFen,
    `earlier refunds ${refundedBeforeFen} outside 0..${payment.amountFen}`,
  );
  if (before.count >= REFUNDS_PER_PAYMENT_MAX) return { kind: "too_many_refunds", refundsBefore: before.count };
  const refundedTotalFen = refundedBeforeFen + amountFen;
  if (refundedTotalFen > payment.amountFen)
    return { kind: "exceeds_payment", refundedBeforeFen, amountFen: payment.amountFen };
  if (payment.status === "rejected") return { kind: "no_voucher", refundedTotalFen, reason: "payment_rejected" };
  if (payment.voucherReturned) return { kind: "no_voucher", refundedTotalFen, reason: "voucher_already_returned" };
  const remainingFen = payment.amountFen - refundedTotalFen;
  if (remainingFen >= payment.thresholdFen) return { kind: "voucher_kept", refundedTotalFen, remainingFen };
  return {
    kind: "voucher_returned",
    refundedTotalFen,
    discountReturnedFen: payment.discountFen,
    slotReleased: slot === "released",
  };
}

/**
 * The clock skew the contract allows between an acquirer and quanta: the signature's replay
 * window (contract REPLAY_WINDOW_S, pinned equal by the contract's tests). A refund may be dated
 * that far past the moment quanta receives it, and no further.
 */
export const CLOCK_SKEW_MS = 300_000;

export type RefundedAtCheck =
  | { readonly ok: true }
  /** refundedAt is before the payment it refunds, or later than its arrival plus the skew: refused, nothing recorded. */
  | { readonly ok: false; readonly bound: "before_payment" | "in_the_future"; readonly message: string };

/**
 * Bounds on a refund's own date, which settlement books it by: a back-dated refund could
 * otherwise land on any day, one already reported included. Not before the payment (a refund
 * cannot precede what it gives back), not beyond the arrival time plus the allowed skew.
 */
export function checkRefundedAt(refundedAtMs: number, paidAtMs: number, receivedAtMs: number): RefundedAtCheck {
  if (refundedAtMs < paidAtMs) {
    return {
      ok: false,
      bound: "before_payment",
      message: `refundedAt ${iso(refundedAtMs)} is before the payment's paidAt ${iso(paidAtMs)}`,
    };
  }
  if (refundedAtMs > receivedAtMs + CLOCK_SKEW_MS) {
    return {
      ok: false,
      bound: "in_the_future",
      message: `refundedAt ${iso(refundedAtMs)} is more than ${CLOCK_SKEW_MS / 1000} s after the refund was received (${iso(receivedAtMs)})`,
    };
  }
  return { ok: true };
}

const iso = (ms: number) => new Date(ms).toISOString();
