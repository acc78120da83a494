import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { sql } from "kysely";
import { classify, type QueuedAttempt } from "@quanta/domain";
import {
  decideRounds,
  findAttempt,
  readCampaigns,
  recordImmediateBatch,
  refundTx,
  type BatchResult,
  type RefillResult,
} from "@quanta/db";
import { createTestWorld, sessionsWaitingOnLock, type TestWorld, testCampaign } from "@quanta/test-kit";

/**
 * The lock protocol that makes I6 exact in time once refunds return stock, proven step by step
 * with a second Postgres session holding the conflicting lock:
 *   - a refund (FOR UPDATE on the tier row) waits for a transaction that read the sold-out mark
 *     under KEY SHARE, so its return is stamped after that transaction's sold_out;
 *   - a worker's round and the ingress's stored sold_out both wait for a refund in progress on
 *     the tier, then see the mark gone: the round refills and grants, the ingress record comes
 *     back stale (to be queued) instead of being stored as sold_out.
 * A wait is observed in pg_stat_activity (the session waits on a lock), never by a clock.
 */
const one = testCampaign(
  { id: "locks", name: "one tier of one voucher", budgetFen: 1_000_000 },
  { id: "L", name: "locks", merchants: ["L-1"] },
  [{ id: "L-only", thresholdFen: 10_000, discountFen: 1_000, quota: 1 }],
);

let world: TestWorld;
let other: pg.Client;

const payment = (txnId: string, payerId: string) => ({
  txnId,
  payerId,
  merchantId: "L-1",
  amountFen: 20_000,
  paidAtMs: Date.parse("2020-09-13T10:00:00+08:00"),
});

async function attempt(txnId: string, payerId: string): Promise<QueuedAttempt> {
  const c = classify(payment(txnId, payerId), [one]);
  if (c.kind !== "needs_stock") throw new Error("expected a stock request");
  return {
    acquirerId: "acq",
    bodyHash: `h-${txnId}`,
    payment: payment(txnId, payerId),
    receivedAtMs: Date.now(),
    partition: 0,
    request: c.request,
  };
}

/** A worker's rounds (and refills) for one attempt. */
async function decide(txnId: string, payerId: string): Promise<{ results: BatchResult[]; refills: RefillResult[] }> {
  const campaigns = new Map((await readCampaigns(world.db.kysely)).map((c) => [c.id, c]));
  const epoch = Number(
    (await sql<{ epoch: string }>`select epoch from partitions where partition = 0`.execute(world.db.kysely)).rows[0]!
      .epoch,
  );
  const results: BatchResult[] = [];
  const refills: RefillResult[] = [];
  await decideRounds(
    world.db.pool,
    [{ partition: 0, epoch, attempts: [await attempt(txnId, payerId)] }],
    campaigns,
    1,
    {
      retry: { attemptsMax: 1, baseDelayMs: 1, delayMaxMs: 1 },
      onCommit: (r) => void results.push(...r),
      onRefill: (move) => void refills.push(move.result),
    },
  );
  return { results, refills };
}

beforeAll(async () => {
  world = await createTestWorld("refund_locks", { campaigns: [one], partitions: 1 });
  other = new pg.Client({ connectionString: world.databaseUrl, application_name: "refund-locks-other" });
  await other.connect();
  // Grant the only voucher, then mark the tier sold out as a refill would.
  await sql`update tier_shares set remaining = 1 where tier_id = 'L-only'`.execute(world.db.kysely);
  await sql`update tiers set pool = 0 where id = 'L-only'`.execute(world.db.kysely);
  const first = await decide("t-1", "p-1");
  expect(first.results[0]).toMatchObject({ kind: "decided", row: { status: "granted" } });
  await sql`update tiers set sold_out_at = clock_timestamp() where id = 'L-only'`.execute(world.db.kysely);
});

// A failed case must not leave its lock behind for the next one.
afterEach(async () => {
  await other.query("rollback");
});

afterAll(async () => {
  await other?.end();
  await world?.cleanup();
});

describe("refunds and sold-out marks", () => {
  it("a refund waits for a transaction that read the mark under KEY SHARE", async () => {
    await other.query("begin");
    await other.query("select 1 from tiers where id = 'L-only' and sold_out_at is not null for key share");
    const refund = refundTx(world.db.kysely, {
      acquirerId: "acq",
      refundId: "r-1",
      txnId: "t-1",
      amountFen: 20_000,
      refundedAtMs: Date.now(),
      bodyHash: "rh",
    });
    await sessionsWaitingOnLock(world, "quanta-test");
    await other.query("commit");
    expect(await refund).toMatchObject({ kind: "recorded", row: { outcome: "voucher_returned" } });
    // The returned voucher is granted again, out of the pool the refund filled.
    const again = await decide("t-2", "p-2");
    expect(again.refills).toEqual(["pool"]);
    expect(again.results[0]).toMatchObject({ kind: "decided", row: { status: "granted", tier_id: "L-only" } });
  });

  it("a batch waits for a refund in progress, then refills and grants instead of answering sold_out", async () => {
    // State: t-2 holds the only voucher (t-1's came back and went to it), the tier is marked sold out.
    await sql`update tiers set sold_out_at = clock_timestamp() where id = 'L-only'`.execute(world.db.kysely);
    // A refund in progress, as refund-tx does it: the tier row locked FOR UPDATE, the voucher back in the
    // pool, the mark cleared, not committed.
    await other.query("begin");
    await other.query("select 1 from tiers where id = 'L-only' for update");
    await other.query("update tiers set pool = pool + 1, sold_out_at = null where id = 'L-only'");
    const batch = decide("t-3", "p-3");
    await sessionsWaitingOnLock(world, "quanta-test");
    await other.query("commit");
    const outcome = await batch;
    // Not sold_out: the round saw the mark gone, a refill took the voucher from the pool the
    // refund filled, and the next round granted it.
    expect(outcome.refills).toEqual(["pool"]);
    expect(outcome.results[0]).toMatchObject({ kind: "decided", row: { status: "granted", tier_id: "L-only" } });
  });

  it("the ingress's sold_out waits for a refund in progress, then comes back stale instead of stored", async () => {
    await sql`update tiers set pool = 0, sold_out_at = clock_timestamp() where id = 'L-only'`.execute(world.db.kysely);
    await other.query("begin");
    await other.query("select 1 from tiers where id = 'L-only' for update");
    await other.query("update tiers set pool = pool + 1, sold_out_at = null where id = 'L-only'");
    const record = {
      acquirerId: "acq",
      bodyHash: "h-i1",
      payment: payment("i-1", "p-i1"),
      receivedAtMs: Date.now(),
      partition: 0,
      decision: { status: "rejected" as const, reason: "sold_out" as const, campaignId: "locks", activityId: "L" },
      decidedBy: "ingress" as const,
    };
    const stored = recordImmediateBatch(world.db.pool, world.db.kysely, [
      { record, checkHolder: true, soldOutTiers: ["L-only"] },
    ]);
    await sessionsWaitingOnLock(world, "quanta-test");
    await other.query("commit");
    const out = await stored;
    expect(out.stored.size).toBe(0);
    expect([...out.stale]).toEqual(["acq/i-1"]);
    // With the mark in place the same record is stored as sold_out.
    await sql`update tiers set pool = 0, sold_out_at = clock_timestamp() where id = 'L-only'`.execute(world.db.kysely);
    const now = await recordImmediateBatch(world.db.pool, world.db.kysely, [
      { record, checkHolder: true, soldOutTiers: ["L-only"] },
    ]);
    expect(now.stored.get("acq/i-1")).toMatchObject({ status: "rejected", reason: "sold_out" });
    expect((await findAttempt(world.db.kysely, "acq", "i-1"))?.decided_by).toBe("ingress");
  });
});
