import { describe, expect, it } from "vitest";
import { decideRefund, type RefundPayment } from "./refund.js";

const granted: RefundPayment = { status: "granted", amountFen: 250_000, thresholdFen: 200_000, discountFen: 40_000, voucherReturned: false };

describe("decideRefund", () => {
  it("returns the voucher on a full refund, and the slot by policy", () => {
    expect(decideRefund(granted, 0, 250_000, "kept")).toEqual({ kind: "voucher_returned", refundedTotalFen: 250_000, discountReturnedFen: 40_000, slotReleased: false });
    expect(decideRefund(granted, 0, 250_000, "released")).toMatchObject({ kind: "voucher_returned", slotReleased: true });
  });

  it("keeps the voucher while what is left still meets the threshold, to the fen", () => {
    expect(decideRefund(granted, 0, 50_000, "kept")).toEqual({ kind: "voucher_kept", refundedTotalFen: 50_000, remainingFen: 200_000 });
    expect(decideRefund(granted, 0, 50_001, "kept")).toMatchObject({ kind: "voucher_returned", refundedTotalFen: 50_001 });
    // Earlier partial refunds count: 30,000 then 20,001 crosses the line.
    expect(decideRefund(granted, 30_000, 20_000, "kept")).toMatchObject({ kind: "voucher_kept", remainingFen: 200_000 });
    expect(decideRefund(granted, 30_000, 20_001, "kept")).toMatchObject({ kind: "voucher_returned" });
  });

  it("returns nothing twice, and nothing for a rejected payment", () => {
    expect(decideRefund({ ...granted, voucherReturned: true }, 100_000, 10_000, "released")).toEqual({ kind: "no_voucher", refundedTotalFen: 110_000, reason: "voucher_already_returned" });
    expect(decideRefund({ status: "rejected", amountFen: 9_000 }, 0, 9_000, "kept")).toEqual({ kind: "no_voucher", refundedTotalFen: 9_000, reason: "payment_rejected" });
  });

  it("refuses refunds that add up to more than was paid", () => {
    expect(decideRefund(granted, 200_000, 50_001, "kept")).toEqual({ kind: "exceeds_payment", refundedBeforeFen: 200_000, amountFen: 250_000 });
    expect(decideRefund({ status: "rejected", amountFen: 100 }, 0, 101, "kept").kind).toBe("exceeds_payment");
    expect(() => decideRefund(granted, 0, 0, "kept")).toThrow();
  });
});
