import { describe, expect, it } from "vitest";
import { CLOCK_SKEW_MS, REFUNDS_PER_PAYMENT_MAX, checkRefundedAt, decideRefund, type RefundPayment } from "./refund.js";

const granted: RefundPayment = {
  status: "granted",
  amountFen: 250_000,
  thresholdFen: 200_000,
  discountFen: 40_000,
  voucherReturned: false,
};

describe("decideRefund", () => {
  it("returns the voucher on a full refund, and the slot by policy", () => {
    expect(decideRefund(granted, { count: 0, fen: 0 }, 250_000, "kept")).toEqual({
      kind: "voucher_returned",
      refundedTotalFen: 250_000,
      discountReturnedFen: 40_000,
      slotReleased: false,
    });
    expect(decideRefund(granted, { count: 0, fen: 0 }, 250_000, "released")).toMatchObject({
      kind: "voucher_returned",
      slotReleased: true,
    });
  });

  it("keeps the voucher while what is left still meets the threshold, to the fen", () => {
    expect(decideRefund(granted, { count: 0, fen: 0 }, 50_000, "kept")).toEqual({
      kind: "voucher_kept",
      refundedTotalFen: 50_000,
      remainingFen: 200_000,
    });
    expect(decideRefund(granted, { count: 0, fen: 0 }, 50_001, "kept")).toMatchObject({
      kind: "voucher_returned",
      refundedTotalFen: 50_001,
    });
    // Earlier partial refunds count: 30,000 then 20,001 crosses the line.
    expect(decideRefund(granted, { count: 1, fen: 30_000 }, 20_000, "kept")).toMatchObject({
      kind: "voucher_kept",
      remainingFen: 200_000,
    });
    expect(decideRefund(granted, { count: 1, fen: 30_000 }, 20_001, "kept")).toMatchObject({
      kind: "voucher_returned",
    });
  });

  it("returns nothing twice, and nothing for a rejected payment", () => {
    expect(decideRefund({ ...granted, voucherReturned: true }, { count: 1, fen: 100_000 }, 10_000, "released")).toEqual(
      { kind: "no_voucher", refundedTotalFen: 110_000, reason: "voucher_already_returned" },
    );
    expect(decideRefund({ status: "rejected", amountFen: 9_000 }, { count: 0, fen: 0 }, 9_000, "kept")).toEqual({
      kind: "no_voucher",
      refundedTotalFen: 9_000,
      reason: "payment_rejected",
    });
  });

  it("refuses refunds that add up to more than was paid", () => {
    expect(decideRefund(granted, { count: 1, fen: 200_000 }, 50_001, "kept")).toEqual({
      kind: "exceeds_payment",
      refundedBeforeFen: 200_000,
      amountFen: 250_000,
    });
    expect(decideRefund({ status: "rejected", amountFen: 100 }, { count: 0, fen: 0 }, 101, "kept").kind).toBe(
      "exceeds_payment",
    );
    expect(() => decideRefund(granted, { count: 0, fen: 0 }, 0, "kept")).toThrow();
  });

  it("refuses a refund past the bound on refunds per payment, whatever its amount", () => {
    expect(decideRefund(granted, { count: REFUNDS_PER_PAYMENT_MAX - 1, fen: 31 }, 1, "kept").kind).toBe("voucher_kept");
    expect(decideRefund(granted, { count: REFUNDS_PER_PAYMENT_MAX, fen: 32 }, 1, "kept")).toEqual({
      kind: "too_many_refunds",
      refundsBefore: REFUNDS_PER_PAYMENT_MAX,
    });
  });
});

describe("checkRefundedAt", () => {
  const paidAtMs = Date.parse("2020-09-13T10:00:00+08:00");
  const receivedAtMs = Date.parse("2026-01-05T12:00:00Z");

  it("accepts a refund dated from its payment up to its arrival plus the allowed skew, both ends included", () => {
    expect(checkRefundedAt(paidAtMs, paidAtMs, receivedAtMs)).toEqual({ ok: true });
    expect(checkRefundedAt(Date.parse("2020-09-20T10:00:00+08:00"), paidAtMs, receivedAtMs)).toEqual({ ok: true });
    expect(checkRefundedAt(receivedAtMs + CLOCK_SKEW_MS, paidAtMs, receivedAtMs)).toEqual({ ok: true });
  });

  it("refuses a refund dated before its payment, or beyond the skew after its arrival, by a millisecond", () => {
    expect(checkRefundedAt(paidAtMs - 1, paidAtMs, receivedAtMs)).toMatchObject({ ok: false, bound: "before_payment" });
    expect(checkRefundedAt(receivedAtMs + CLOCK_SKEW_MS + 1, paidAtMs, receivedAtMs)).toMatchObject({
      ok: false,
      bound: "in_the_future",
    });
    expect(CLOCK_SKEW_MS).toBe(300_000);
  });
});
