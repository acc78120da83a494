import type { RefundBody } from "@quanta/contract";
import type { RefundedPayment, RefundRow } from "@quanta/db";

/**
 * The contract's 200 answer to a refund, from its stored row and the payment it names (first
 * call and every repeat alike: neither changes once written).
 */
export function refundAnswer(row: RefundRow, payment: RefundedPayment): RefundBody {
  const base = { refundId: row.refund_id, txnId: row.txn_id };
  const refundedTotalFen = Number(row.refunded_total_fen);
  switch (row.outcome) {
    case "voucher_returned":
      return {
        ...base,
        status: "voucher_returned",
        tierId: payment.tierId!,
        discountReturnedFen: payment.discountFen!,
        slot: row.slot_released ? "released" : "kept",
        refundedTotalFen,
      };
    case "voucher_kept":
      return {
        ...base,
        status: "voucher_kept",
        tierId: payment.tierId!,
        refundedTotalFen,
        remainingFen: payment.amountFen - refundedTotalFen,
      };
    case "no_voucher":
      return { ...base, status: "no_voucher", reason: row.reason!, refundedTotalFen };
  }
}
