import { describe, expect, it } from "vitest";
import { decideBatch, holderKey, tierKey, type BatchAttempt, type BatchState } from "./decide-batch.js";
import { seedLike } from "./seed-like.fixture.js";
import { InvariantViolation } from "./assert.js";

const campaign = seedLike();
const campaigns = new Map([[campaign.id, campaign]]);
const a2 = (payerId: string, amountFen: number, tierIds: string[]): BatchAttempt => ({
  payerId,
  amountFen,
  request: { campaignId: "c1", activityId: "A2", tierIds },
});
const state = (share: Record<string, number>, empty: string[] = [], holders: string[] = []): BatchState => ({
  share: new Map(Object.entries(share).map(([t, n]) => [tierKey("c1", t), n])),
  empty: new Set(empty.map((t) => tierKey("c1", t))),
  holders: new Set(holders.map((p) => holderKey("c1", "A2", p))),
});

describe("decideBatch", () => {
  it("grants the highest tier with stock and computes payable in fen", () => {
    const s = state({ "A2-400": 1, "A2-100": 5 });
    const out = decideBatch([a2("p1", 250_000, ["A2-400", "A2-100", "A2-20"])], s, campaigns);
    expect(out.decisions).toEqual([
      {
        status: "granted",
        campaignId: "c1",
        activityId: "A2",
        tierId: "A2-400",
        discountFen: 40_000,
        payableFen: 210_000,
      },
    ]);
    expect(s.share.get(tierKey("c1", "A2-400"))).toBe(0);
  });

  it("falls to the next lower tier only when the higher one is empty everywhere (best_available)", () => {
    const s = state({ "A2-400": 0, "A2-100": 1 }, ["A2-400"]);
    const out = decideBatch([a2("p1", 250_000, ["A2-400", "A2-100", "A2-20"])], s, campaigns);
    expect(out.decisions[0]).toMatchObject({
      status: "granted",
      tierId: "A2-100",
      discountFen: 10_000,
      payableFen: 240_000,
    });
  });

  it("stops and asks for a refill when a tier is empty here but not known empty everywhere", () => {
    const s = state({ "A2-400": 1 });
    const out = decideBatch(
      [a2("p1", 250_000, ["A2-400"]), a2("p2", 250_000, ["A2-400", "A2-100"]), a2("p3", 250_000, ["A2-400"])],
      s,
      campaigns,
    );
    expect(out.decisions).toHaveLength(1);
    expect(out.refill).toEqual({ campaignId: "c1", tierId: "A2-400" });
  });

  it("answers sold_out when every qualifying tier is empty everywhere", () => {
    const s = state({}, ["A2-400", "A2-100", "A2-20"]);
    const out = decideBatch([a2("p1", 250_000, ["A2-400", "A2-100", "A2-20"])], s, campaigns);
    expect(out.decisions).toEqual([{ status: "rejected", reason: "sold_out", campaignId: "c1", activityId: "A2" }]);
    expect(out.refill).toBeUndefined();
  });

  it("gives one voucher per payer per activity, in arrival order, even within one batch", () => {
    const s = state({ "A2-400": 10 }, [], ["p0"]);
    const out = decideBatch(
      [a2("p0", 250_000, ["A2-400"]), a2("p1", 250_000, ["A2-400"]), a2("p1", 300_000, ["A2-400"])],
      s,
      campaigns,
    );
    expect(out.decisions.map((d) => (d.status === "granted" ? d.tierId : d.reason))).toEqual([
      "already_redeemed",
      "A2-400",
      "already_redeemed",
    ]);
    expect(s.share.get(tierKey("c1", "A2-400"))).toBe(9);
  });

  it("stops the process on a share below zero", () => {
    expect(() => decideBatch([a2("p1", 250_000, ["A2-400"])], state({ "A2-400": -1 }), campaigns)).toThrow(
      InvariantViolation,
    );
  });

  it("draws every grant from a capped budget, falls to a smaller voucher the budget can pay, then refuses budget_exhausted", () => {
    const s: BatchState = { ...state({ "A2-400": 5, "A2-100": 5, "A2-20": 5 }), budgetLeft: new Map([["c1", 52_000]]) };
    const tiers = ["A2-400", "A2-100", "A2-20"];
    const out = decideBatch(
      ["p1", "p2", "p3", "p4", "p5"].map((p) => a2(p, 250_000, tiers)),
      s,
      campaigns,
    );
    expect(out.refill).toBeUndefined();
    expect(out.decisions.map((d) => (d.status === "granted" ? `${d.tierId}` : d.reason))).toEqual([
      "A2-400", // 52,000 -> 12,000
      "A2-100", // 12,000 -> 2,000 (A2-400, with stock, costs 40,000: skipped)
      "A2-20", // 2,000 -> 0
      "budget_exhausted",
      "budget_exhausted",
    ]);
    expect(s.budgetLeft!.get("c1")).toBe(0);
  });

  it("says sold_out, not budget_exhausted, when every qualifying tier is empty everywhere", () => {
    const s: BatchState = { ...state({ "A2-20": 0 }, ["A2-20"]), budgetLeft: new Map([["c1", 100]]) };
    expect(decideBatch([a2("p1", 15_000, ["A2-20"])], s, campaigns).decisions[0]).toMatchObject({
      status: "rejected",
      reason: "sold_out",
    });
  });

  it("asks for a refill only for a tier the budget could still pay", () => {
    const s: BatchState = { ...state({ "A2-400": 0, "A2-20": 0 }), budgetLeft: new Map([["c1", 3_000]]) };
    const out = decideBatch([a2("p1", 250_000, ["A2-400", "A2-20"])], s, campaigns);
    expect(out.refill).toEqual({ campaignId: "c1", tierId: "A2-20" });
  });
});
