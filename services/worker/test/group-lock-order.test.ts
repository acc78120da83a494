import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { sql } from "kysely";
import { classify, parseCampaignFile, type QueuedAttempt } from "@quanta/domain";
import { decideGroupTx, readCampaigns } from "@quanta/db";
import { createTestWorld, settledWithin as settled, type TestWorld } from "@quanta/cli";

/**
 * The lock order of an owner's group transaction against a refund's. A refund locks a capped
 * campaign's budget row, then the tier row FOR UPDATE. A group transaction must take them in the
 * same order: its batch read locks the budget rows before anything else, and the ingress's own
 * sold_out decisions, which take KEY SHARE on marked tier rows, are stored last. Here a second
 * session holds the budget row as a refund would; the group transaction must wait there holding
 * no tier lock, so that the "refund" can go on to lock the marked tier row, commit, and let the
 * group transaction finish (the other order deadlocks, and Postgres aborts one of the two).
 */
const capped = parseCampaignFile({
  id: "capped",
  name: "budget below its quotas' worth",
  budgetFen: 1_000,
  window: { start: "2020-09-13T00:00:00+08:00", end: "2020-09-30T23:59:59+08:00" },
  activities: [
    {
      id: "K",
      name: "capped",
      merchants: ["K-1"],
      tiers: [
        { id: "K-a", thresholdFen: 10_000, discountFen: 1_000, quota: 5 },
        { id: "K-b", thresholdFen: 50_000, discountFen: 2_000, quota: 1 },
      ],
    },
  ],
});

let world: TestWorld;
let other: pg.Client;
const paidAtMs = Date.parse("2020-09-13T10:00:00+08:00");

beforeAll(async () => {
  world = await createTestWorld("group_lock_order", { campaigns: [capped], partitions: 1 });
  other = new pg.Client({ connectionString: world.databaseUrl });
  await other.connect();
  // K-a's stock in the partition's share; K-b empty everywhere and marked so.
  await sql`update tier_shares set remaining = 5 where tier_id = 'K-a'`.execute(world.db.kysely);
  await sql`update tier_shares set remaining = 0 where tier_id = 'K-b'`.execute(world.db.kysely);
  await sql`update tiers set pool = 0`.execute(world.db.kysely);
  await sql`update tiers set sold_out_at = clock_timestamp() where id = 'K-b'`.execute(world.db.kysely);
});

afterAll(async () => {
  await other?.end();
  await world?.cleanup();
});

describe("group transaction lock order", () => {
  it("waits on a capped campaign's budget row before it takes any tier lock, as a refund does", async () => {
    const campaigns = new Map((await readCampaigns(world.db.kysely)).map((c) => [c.id, c]));
    const epoch = Number((await sql<{ epoch: string }>`select epoch from partitions where partition = 0`.execute(world.db.kysely)).rows[0]!.epoch);
    const payment = { txnId: "g-1", payerId: "p-1", merchantId: "K-1", amountFen: 20_000, paidAtMs };
    const c = classify(payment, [capped]);
    if (c.kind !== "needs_stock") throw new Error("expected a stock request");
    const attempt: QueuedAttempt = { acquirerId: "acq", bodyHash: "h-g1", payment, receivedAtMs: Date.now(), partition: 0, request: c.request };
    // The ingress's own sold_out for a payment that qualified only for K-b (marked empty everywhere).
    const soldOut = {
      record: {
        acquirerId: "acq",
        bodyHash: "h-g2",
        payment: { txnId: "g-2", payerId: "p-2", merchantId: "K-1", amountFen: 60_000, paidAtMs },
        receivedAtMs: Date.now(),
        partition: 0,
        decision: { status: "rejected" as const, reason: "sold_out" as const, campaignId: "capped", activityId: "K" },
        decidedBy: "ingress" as const,
      },
      checkHolder: true,
      soldOutTiers: ["K-b"],
    };

    // A refund's first lock: the capped campaign's budget row.
    await other.query("begin");
    await other.query("select 1 from campaigns where id = 'capped' for update");
    const group = decideGroupTx(world.db.pool, [{ partition: 0, epoch, attempts: [attempt] }], campaigns, 1, [soldOut]);
    expect(await settled(group, 300)).toBe(false);
    // Its second: the marked tier row, which the group transaction must not hold yet.
    const tierLock = other.query("select 1 from tiers where campaign_id = 'capped' and id = 'K-b' for update");
    expect(await settled(tierLock, 300)).toBe(true);
    await tierLock;
    await other.query("commit");

    const outcome = await group;
    expect(outcome.results).toHaveLength(1);
    expect(outcome.results[0]).toMatchObject({ kind: "decided", row: { status: "granted", tier_id: "K-a", discount_fen: 1_000 } });
    expect(outcome.immediateRows).toEqual([expect.objectContaining({ txn_id: "g-2", reason: "sold_out" })]);
    const budget = await sql<{ left: string }>`select budget_left_fen as left from campaigns where id = 'capped'`.execute(world.db.kysely);
    expect(Number(budget.rows[0]!.left)).toBe(0);
  });
});
