import { describe, expect, it } from "vitest";
import { Round, attemptKey, type RoundRead } from "./round.js";
import { holderKey, tierKey } from "./decide-batch.js";
import { seedLike } from "./seed-like.fixture.js";
import { InvariantViolation } from "./assert.js";
import type { QueuedAttempt } from "./queued-attempt.js";

/** The round's rules without Postgres: what decideGroupTx does between its read and its write. */
const campaign = seedLike();
const campaigns = new Map([[campaign.id, campaign]]);
const key = (tier: string) => tierKey("c1", tier);

let clock = 0;
const attempt = (
  txnId: string,
  partition: number,
  amountFen = 250_000,
  tierIds = ["A2-400", "A2-100", "A2-20"],
  payerId = `payer-${txnId}`,
): QueuedAttempt => ({
  acquirerId: "acq",
  bodyHash: `h-${txnId}`,
  payment: { txnId, payerId, merchantId: "M-0001", amountFen, paidAtMs: 0 },
  receivedAtMs: ++clock,
  partition,
  request: { campaignId: "c1", activityId: "A2", tierIds },
});

const read = (shares: Record<number, Record<string, number>>, more: Partial<RoundRead> = {}): RoundRead => ({
  storedKeys: new Set(),
  holders: new Set(),
  empty: new Set(),
  budgetLeft: new Map(),
  shares: new Map(
    Object.entries(shares).map(([p, s]) => [Number(p), new Map(Object.entries(s).map(([t, n]) => [key(t), n]))]),
  ),
  ...more,
});

describe("Round", () => {
  it("decides the round's attempts in arrival order whatever their partition, each grant from its own partition's share first", () => {
    const [a, b, c] = [attempt("a", 1), attempt("b", 0), attempt("c", 1)];
    const round = new Round(
      [
        { partition: 0, attempts: [b] },
        { partition: 1, attempts: [a, c] },
      ],
      read({ 0: { "A2-400": 1 }, 1: { "A2-400": 1 } }, { empty: new Set([key("A2-100"), key("A2-20")]) }),
    );
    // c finds both shares empty and A2-400 not marked: it waits for a refill, however lower tiers stand.
    expect(round.decide(campaigns)).toEqual({
      partition: 1,
      campaignId: "c1",
      tierId: "A2-400",
      need: 1,
      partitionsAsking: 2,
    });
    expect(round.decided.map((d) => [d.attempt.payment.txnId, d.decision.status])).toEqual([
      ["a", "granted"],
      ["b", "granted"],
    ]);
    // a (partition 1) took partition 1's voucher, b partition 0's: one from each share.
    expect(round.usedStock()).toEqual([
      { partition: 0, campaignId: "c1", tierId: "A2-400", n: 1 },
      { partition: 1, campaignId: "c1", tierId: "A2-400", n: 1 },
    ]);
  });

  it("takes from another partition's share of the round when its own is empty", () => {
    const round = new Round(
      [
        { partition: 0, attempts: [attempt("x", 0)] },
        { partition: 1, attempts: [] },
      ],
      read({ 0: {}, 1: { "A2-400": 2 } }),
    );
    expect(round.decide(campaigns)).toBeUndefined();
    expect(round.decided[0]!.decision).toMatchObject({ status: "granted", tierId: "A2-400" });
    expect(round.usedStock()).toEqual([{ partition: 1, campaignId: "c1", tierId: "A2-400", n: 1 }]);
  });

  it("stops at the first attempt whose tier no share holds: the refill tail, in order, with what it needs", () => {
    const [a, b, c, d] = [
      attempt("a", 0),
      attempt("b", 1),
      attempt("c", 0, 150_000, ["A2-100", "A2-20"]),
      attempt("d", 1),
    ];
    const round = new Round(
      [
        { partition: 0, attempts: [a, c] },
        { partition: 1, attempts: [b, d] },
      ],
      read({ 0: { "A2-400": 1 }, 1: {} }),
    );
    const refill = round.decide(campaigns);
    expect(round.decided.map((x) => x.attempt.payment.txnId)).toEqual(["a"]);
    expect(refill).toEqual({ partition: 1, campaignId: "c1", tierId: "A2-400", need: 2, partitionsAsking: 2 });
    expect(round.pending.map((x) => x.payment.txnId)).toEqual(["b", "c", "d"]);
    // A refill of 1 into partition 1: b is granted, then c asks for A2-100.
    round.addStock(1, key("A2-400"), 1);
    expect(round.decide(campaigns)).toMatchObject({ tierId: "A2-100", partition: 0, need: 2 }); // c and d both name it
    expect(round.decided.map((x) => x.attempt.payment.txnId)).toEqual(["a", "b"]);
    // The refill's stock counts as read: the write takes only what was granted from it.
    expect(round.usedStock()).toEqual([
      { partition: 0, campaignId: "c1", tierId: "A2-400", n: 1 },
      { partition: 1, campaignId: "c1", tierId: "A2-400", n: 1 },
    ]);
    // A2-100 turns out empty everywhere: c falls to A2-20 only if it holds stock, else it waits again.
    round.markEmpty(key("A2-100"));
    expect(round.decide(campaigns)).toMatchObject({ tierId: "A2-20" });
    round.markEmpty(key("A2-20"));
    expect(round.decide(campaigns)).toMatchObject({ tierId: "A2-400", partition: 1, need: 1 });
    expect(round.decided.at(-1)!.decision).toMatchObject({ status: "rejected", reason: "sold_out" });
    expect(round.pending.map((x) => x.payment.txnId)).toEqual(["d"]);
  });

  it("leaves txns stored before, and repeats within the round, to the stored rows", () => {
    const first = attempt("s1", 0);
    const again = { ...attempt("r1", 0) };
    const repeat = { ...again, receivedAtMs: ++clock };
    const round = new Round(
      [{ partition: 0, attempts: [first, again, repeat] }],
      read({ 0: { "A2-400": 5 } }, { storedKeys: new Set([attemptKey("acq", "s1")]) }),
    );
    round.decide(campaigns);
    expect(round.decided.map((d) => d.attempt.payment.txnId)).toEqual(["r1"]);
  });

  it("refuses a payer who holds a voucher, and one payer twice in a round gets one voucher", () => {
    const holder = attempt("h", 0, 250_000, ["A2-400"], "holder");
    const twiceA = attempt("t1", 0, 250_000, ["A2-400"], "twice");
    const twiceB = attempt("t2", 0, 250_000, ["A2-400"], "twice");
    const round = new Round(
      [{ partition: 0, attempts: [holder, twiceA, twiceB] }],
      read({ 0: { "A2-400": 5 } }, { holders: new Set([holderKey("c1", "A2", "holder")]) }),
    );
    round.decide(campaigns);
    expect(
      round.decided.map((d) => (d.decision.status === "rejected" ? d.decision.reason : d.decision.status)),
    ).toEqual(["already_redeemed", "granted", "already_redeemed"]);
  });

  it("draws grants from a capped budget and reports what it spent; never below zero", () => {
    const round = new Round(
      [{ partition: 0, attempts: [attempt("b1", 0, 250_000, ["A2-400"]), attempt("b2", 0, 250_000, ["A2-400"])] }],
      read({ 0: { "A2-400": 5 } }, { budgetLeft: new Map([["c1", 50_000]]) }),
    );
    round.decide(campaigns);
    expect(
      round.decided.map((d) => (d.decision.status === "rejected" ? d.decision.reason : d.decision.status)),
    ).toEqual(["granted", "budget_exhausted"]);
    expect(round.budgetSpent()).toEqual([["c1", 40_000]]);
  });

  it("stops the process on a refill into a partition outside the round, or partitions out of order", () => {
    const round = new Round([{ partition: 0, attempts: [] }], read({ 0: {} }));
    expect(() => round.addStock(3, key("A2-400"), 1)).toThrow(InvariantViolation);
    expect(
      () =>
        new Round(
          [
            { partition: 1, attempts: [] },
            { partition: 0, attempts: [] },
          ],
          read({}),
        ),
    ).toThrow(InvariantViolation);
  });
});
