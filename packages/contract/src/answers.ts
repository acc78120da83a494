import type { Decision } from "@quanta/domain";

/** Answer bodies, exactly as the contract's table gives them. */
export type DecisionBody =
  | { txnId: string; status: "granted"; activityId: string; tierId: string; discountFen: number; payableFen: number }
  | { txnId: string; status: "rejected"; reason: string };

/** The refund callback's 200 answers. */
export type RefundBody =
  | {
      refundId: string;
      txnId: string;
      status: "voucher_returned";
      tierId: string;
      discountReturnedFen: number;
      slot: "released" | "kept";
      refundedTotalFen: number;
    }
  | {
      refundId: string;
      txnId: string;
      status: "voucher_kept";
      tierId: string;
      refundedTotalFen: number;
      remainingFen: number;
    }
  | {
      refundId: string;
      txnId: string;
      status: "no_voucher";
      reason: "payment_rejected" | "voucher_already_returned";
      refundedTotalFen: number;
    };

export type PendingBody = { txnId: string; status: "pending" };

export type ErrorCode =
  | "invalid_body"
  | "unknown_acquirer"
  | "bad_signature"
  | "stale_timestamp"
  | "txn_conflict"
  | "body_too_large"
  | "unsupported_media_type"
  | "overloaded"
  | "unknown_txn"
  | "txn_pending"
  | "refund_conflict"
  | "refund_exceeds_payment"
  | "too_many_refunds"
  | "refunded_at_out_of_bounds";

export type ErrorBody = { error: { code: ErrorCode; message?: string; field?: string } };

export function decisionBody(txnId: string, decision: Decision): DecisionBody {
  return decision.status === "granted"
    ? {
        txnId,
        status: "granted",
        activityId: decision.activityId,
        tierId: decision.tierId,
        discountFen: decision.discountFen,
        payableFen: decision.payableFen,
      }
    : { txnId, status: "rejected", reason: decision.reason };
}

export function errorBody(code: ErrorCode, message?: string, field?: string): ErrorBody {
  const error: ErrorBody["error"] = { code };
  if (message !== undefined) error.message = message;
  if (field !== undefined) error.field = field;
  return { error };
}

export const attemptLocation = (txnId: string): string => `/v1/attempts/${txnId}`;
