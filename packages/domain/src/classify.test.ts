import { describe, expect, it } from "vitest";
import { classify, inWindow } from "./classify.js";
import { seedLike } from "./seed-like.fixture.js";
import type { Payment } from "./payment.js";

const pay = (p: Partial<Payment>): Payment => ({
  txnId: "t1",
  payerId: "p1",
  merchantId: "M-0001",
  amountFen: 60_000,
  paidAtMs: Date.parse("2020-09-13T10:00:00+08:00"),
  ...p,
});

describe("classify", () => {
  const campaign = seedLike();

  it("lists qualifying tiers highest first under best_available", () => {
    expect(classify(pay({ amountFen: 250_000 }), [campaign])).toEqual({
      kind: "needs_stock",
      request: { campaignId: "c1", activityId: "A2", tierIds: ["A2-400", "A2-100", "A2-20"] },
    });
    expect(classify(pay({ amountFen: 60_000 }), [campaign])).toMatchObject({
      request: { tierIds: ["A2-100", "A2-20"] },
    });
  });

  it("offers only the highest qualifying tier under exact", () => {
    const exact = seedLike({ tierPolicy: "exact" });
    expect(classify(pay({ amountFen: 250_000 }), [exact])).toMatchObject({ request: { tierIds: ["A2-400"] } });
  });

  it("treats the threshold as inclusive", () => {
    expect(classify(pay({ amountFen: 10_000 }), [campaign])).toMatchObject({ request: { tierIds: ["A2-20"] } });
    expect(classify(pay({ amountFen: 9_999 }), [campaign])).toEqual({
      kind: "decided",
      decision: { status: "rejected", reason: "below_threshold", campaignId: "c1", activityId: "A2" },
    });
  });

  it("picks the first activity, in campaign order, that lists the merchant", () => {
    expect(classify(pay({ merchantId: "M-FLAGSHIP", amountFen: 250_000 }), [campaign])).toMatchObject({
      request: { activityId: "A1", tierIds: ["A1-100"] },
    });
  });

  it("rejects merchants no activity lists", () => {
    expect(classify(pay({ merchantId: "M-9999" }), [campaign])).toEqual({
      kind: "decided",
      decision: { status: "rejected", reason: "merchant_not_eligible" },
    });
    expect(classify(pay({}), [])).toMatchObject({ decision: { reason: "merchant_not_eligible" } });
  });

  it("rejects payments outside the window, checked before the threshold", () => {
    const before = pay({ paidAtMs: Date.parse("2020-09-12T23:59:59+08:00"), amountFen: 1 });
    expect(classify(before, [campaign])).toMatchObject({ decision: { reason: "outside_window" } });
    const after = pay({ paidAtMs: Date.parse("2020-10-01T00:00:00+08:00") });
    expect(classify(after, [campaign])).toMatchObject({ decision: { reason: "outside_window" } });
  });

  it("holds the window's last second inclusive, to the millisecond", () => {
    expect(inWindow(campaign, Date.parse("2020-09-30T23:59:59.999+08:00"))).toBe(true);
    expect(inWindow(campaign, Date.parse("2020-09-13T00:00:00.000+08:00"))).toBe(true);
    expect(inWindow(campaign, Date.parse("2020-09-12T23:59:59.999+08:00"))).toBe(false);
  });

  it("uses the campaign whose window holds the payment when two list the merchant", () => {
    const first = seedLike({
      id: "b1",
      window: { start: "2020-08-01T00:00:00+08:00", end: "2020-08-31T23:59:59+08:00" },
    });
    const second = seedLike({ id: "b2" });
    expect(classify(pay({}), [first, second])).toMatchObject({ request: { campaignId: "b2" } });
    expect(classify(pay({ paidAtMs: Date.parse("2020-08-15T12:00:00+08:00") }), [first, second])).toMatchObject({
      request: { campaignId: "b1" },
    });
  });
});
