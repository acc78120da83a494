import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { sql } from "kysely";
import { classify, payerInPartition, type QueuedAttempt } from "@quanta/domain";
import {
  connect,
  decideRounds,
  readCampaigns,
  verifyDatabaseInvariants,
  type BatchResult,
  type Db,
  type RefillResult,
} from "@quanta/db";
import {
  createTestWorld,
  deadlocksIn,
  sessionsWaitingOnLock,
  testCampaign,
  until,
  type TestWorld,
} from "@quanta/test-kit";

/**
 * The lock order of rounds, refills and refunds, across owners, with the interleavings that
 * deadlocked before forced by holding a round open between its read and its write:
 *   - a round takes a capped campaign's budget row before any share or tier lock, as a refund
 *     does, so a "refund" holding the budget row can go on to lock the marked tier row;
 *   - two owners drain the same tier's last stock at once: owner A's round holds its shares while
 *     owner B's refill holds the tier row and sweeps, waiting for A's shares. A's round never waits
 *     for the tier row (it asks with SKIP LOCKED, and its own refill waits outside the round), so
 *     both finish: no deadlock, the quota exactly granted, sold_out only once the tier is empty.
 *     With refills inside rounds, A's refill waited for the tier row while holding the shares B
 *     waited for: a cycle.
 * Waits are observed in pg_stat_activity, not by a clock.
 */
const capped = testCampaign(
  { id: "capped", name: "budget below its quotas' worth", budgetFen: 1_000 },
  { id: "K", name: "capped", merchants: ["K-1"] },
  [
    { id: "K-a", thresholdFen: 10_000, discountFen: 1_000, quota: 5 },
    { id: "K-b", thresholdFen: 50_000, discountFen: 2_000, quota: 1 },
  ],
);
const last = testCampaign(
  { id: "last", name: "the last vouchers", budgetFen: 10_000_000 },
  { id: "T", name: "tail", merchants: ["T-1"] },
  [{ id: "T-only", thresholdFen: 10_000, discountFen: 1_000, quota: 8 }],
);
const PARTITIONS = 4;
const paidAtMs = Date.parse("2020-09-13T10:00:00+08:00");

let world: TestWorld;
let ownerA: Db;
let ownerB: Db;
let other: pg.Client;
let seq = 0;

beforeAll(async () => {
  world = await createTestWorld("round_lock_order", { campaigns: [capped, last], partitions: PARTITIONS });
  const owner = (name: string) =>
    connect({
      connectionString: world.databaseUrl,
      poolMax: 2,
      statementTimeoutMs: 30_000,
      applicationName: name,
      keyLookupsOnly: true,
      pipeline: true,
    });
  ownerA = owner("owner-a");
  ownerB = owner("owner-b");
  other = new pg.Client({ connectionString: world.databaseUrl, application_name: "lock-order-other" });
  await other.connect();
});

afterAll(async () => {
  await other?.end();
  await ownerA?.close();
  await ownerB?.close();
  await world?.cleanup();
});

function attempt(campaign: typeof capped, merchantId: string, partition: number, amountFen: number): QueuedAttempt {
  const payerId = payerInPartition(`payer-${seq++}-`, partition, PARTITIONS);
  const payment = { txnId: `lo-${seq++}`, payerId, merchantId, amountFen, paidAtMs };
  const c = classify(payment, [campaign]);
  if (c.kind !== "needs_stock") throw new Error("expected a stock request");
  return {
    acquirerId: "acq",
    bodyHash: `h-${payment.txnId}`,
    payment,
    receivedAtMs: seq,
    partition,
    request: c.request,
  };
}

/** A worker's rounds over these attempts (one batch per partition), as the flusher runs them. */
async function rounds(db: Db, attempts: QueuedAttempt[], probe?: { afterRead: () => Promise<void> }) {
  const campaigns = new Map((await readCampaigns(world.db.kysely)).map((c) => [c.id, c]));
  const epochs = (
    await sql<{ partition: number; epoch: string }>`select partition, epoch from partitions order by partition`.execute(
      world.db.kysely,
    )
  ).rows;
  const byPartition = new Map<number, QueuedAttempt[]>();
  for (const a of attempts) byPartition.set(a.partition, [...(byPartition.get(a.partition) ?? []), a]);
  const results: BatchResult[] = [];
  const refills: RefillResult[] = [];
  const retried: string[] = [];
  await decideRounds(
    db.pool,
    [...byPartition].map(([partition, as]) => ({ partition, epoch: Number(epochs[partition]!.epoch), attempts: as })),
    campaigns,
    PARTITIONS,
    {
      retry: { attemptsMax: 3, baseDelayMs: 5, delayMaxMs: 20, onRetry: (cls) => void retried.push(cls) },
      onCommit: (r) => void results.push(...r),
      onRefill: (move) => void refills.push(move.result),
      ...(probe ? { probe } : {}),
    },
  );
  return { results, refills, retried };
}

describe("round lock order", () => {
  it("waits on a capped campaign's budget row before it takes any share or tier lock, as a refund does", async () => {
    await sql`update tier_shares set remaining = 5 where tier_id = 'K-a' and partition = 0`.execute(world.db.kysely);
    await sql`update tiers set pool = 0 where campaign_id = 'capped'`.execute(world.db.kysely);
    await sql`update tiers set sold_out_at = clock_timestamp() where id = 'K-b'`.execute(world.db.kysely);

    // A refund's first lock: the capped campaign's budget row.
    await other.query("begin");
    await other.query("select 1 from campaigns where id = 'capped' for update");
    // 60,000 fen qualifies for K-b (marked empty) and K-a: the round will take KEY SHARE on K-b,
    // after the budget row.
    const round = rounds(ownerA, [attempt(capped, "K-1", 0, 60_000)]);
    expect(await sessionsWaitingOnLock(world, "owner-a")).toEqual([expect.stringContaining("for update")]);
    // Its second: the marked tier row FOR UPDATE, which the round must not hold (nor KEY SHARE on it) yet.
    await other.query("select 1 from tiers where campaign_id = 'capped' and id = 'K-b' for update");
    await other.query("commit");

    const outcome = await round;
    expect(outcome.results).toEqual([
      expect.objectContaining({
        kind: "decided",
        row: expect.objectContaining({ status: "granted", tier_id: "K-a", discount_fen: 1_000 }),
      }),
    ]);
    const budget = await sql<{
      left: string;
    }>`select budget_left_fen as left from campaigns where id = 'capped'`.execute(world.db.kysely);
    expect(Number(budget.rows[0]!.left)).toBe(0);
  });

  it("two owners drain a tier's last stock at once, one round held open while the other's refill sweeps: no deadlock", async () => {
    // The last 8 vouchers: 4 in each of owner A's partitions (2, 3), none in owner B's (0, 1) or the pool.
    await sql`update tier_shares set remaining = case when partition in (2, 3) then 4 else 0 end where tier_id = 'T-only'`.execute(
      world.db.kysely,
    );
    await sql`update tiers set pool = 0 where id = 'T-only'`.execute(world.db.kysely);
    const deadlocksBefore = await deadlocksIn(world, ["lock-order-other", "owner-a", "owner-b"]);

    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let paused = false;
    // Owner A: 12 attempts for 8 vouchers. Its first round reads (locking its shares) and stops.
    const a = rounds(
      ownerA,
      [2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3].map((p) => attempt(last, "T-1", p, 20_000)),
      {
        afterRead: async () => {
          if (paused) return;
          paused = true;
          await held;
        },
      },
    );
    await until("owner A's round paused between its read and its write", 30_000, () => paused);
    // Owner B: its round finds no stock in its shares and commits nothing; its refill takes the
    // tier row, finds the pool empty and sweeps: it waits for owner A's shares.
    const b = rounds(
      ownerB,
      [0, 1, 0, 1].map((p) => attempt(last, "T-1", p, 20_000)),
    );
    const waiting = await sessionsWaitingOnLock(world, "owner-b");
    expect(waiting).toEqual([expect.stringContaining("from tier_shares")]);
    // Owner A's round goes on: it grants what its shares hold, runs dry, commits; its own refill
    // then waits for the tier row behind B's (outside any round); B's sweep gets A's shares.
    release();
    const [outA, outB] = await Promise.all([a, b]);

    const all = [...outA.results, ...outB.results];
    expect(all).toHaveLength(16);
    expect(all.filter((r) => r.kind === "decided" && r.row.status === "granted")).toHaveLength(8);
    expect(all.filter((r) => r.kind === "decided" && r.row.reason === "sold_out")).toHaveLength(8);
    expect([...outA.retried, ...outB.retried]).toEqual([]);
    expect(outB.refills[0]).toBe("empty"); // the sweep ran after A's commit and found A's shares used up
    const tier = await sql<{
      pool: number;
      sold_out: boolean;
    }>`select pool, sold_out_at is not null as sold_out from tiers where id = 'T-only'`.execute(world.db.kysely);
    expect(tier.rows[0]).toEqual({ pool: 0, sold_out: true });
    expect((await verifyDatabaseInvariants(world.db.kysely, "last")).filter((c) => !c.ok)).toEqual([]);
    // Postgres publishes a backend's counters when it exits: close the owners' pools first.
    await ownerA.close();
    await ownerB.close();
    expect(await deadlocksIn(world, ["lock-order-other"])).toBe(deadlocksBefore);
  });
});
