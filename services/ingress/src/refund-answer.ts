import type { RefundBody } from "@quanta/contract";
import type { RefundRow } from "@quanta/db";

/** The contract's 200 answer to a refund, from its stored row (first call and every repeat alike). */
export function refundAnswer(row: RefundRow, paymentAmountFen: number): RefundBody {
  const base = { refundId: row.refund_id, txnId: row.txn_id };
  const refundedTotalFen = Number(row.refunded_total_fen);
  switch (row.outcome) {
    case "voucher_returned":
      return { ...base, status: "voucher_returned", tierId: row.tier_id!, discountReturnedFen: Number(row.discount_returned_fen), slot: row.slot_released ? "released" : "kept", refundedTotalFen };
    case "voucher_kept":
      return { ...base, status: "voucher_kept", tierId: row.tier_id!, refundedTotalFen, remainingFen: paymentAmountFen - refundedTotalFen };
    case "no_voucher":
      return { ...base, status: "no_voucher", reason: row.reason!, refundedTotalFen };
  }
}
