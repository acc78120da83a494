import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { classify, payerInPartition, type QueuedAttempt } from "@quanta/domain";
import {
  connect,
  decideGroupTx,
  decideRounds,
  readCampaigns,
  recordImmediateBatch,
  verifyDatabaseInvariants,
  type BatchResult,
  type Db,
  type ImmediateRecord,
  type RefillResult,
} from "@quanta/db";
import { createTestWorld, type TestWorld, testCampaign } from "@quanta/test-kit";

/**
 * A worker's rounds over several partitions, against a real Postgres, on a pool in pipeline mode
 * as the services run it: a round decides against the stock its partitions hold together, in
 * arrival order whatever the partition; one that runs dry commits what it decided and defers the
 * rest, which a refill in a transaction of its own and a next round then serve. It stays one file
 * over 300 lines because both of its describes (the rounds, the ingress's own decisions) run on the
 * one world and the same stock, pool and round helpers, which a split would have to copy.
 */
const campaign = testCampaign(
  { id: "round", name: "two tiers", budgetFen: 1_000_000 },
  { id: "G", name: "group", merchants: ["G-1"] },
  [
    { id: "G-big", thresholdFen: 50_000, discountFen: 5_000, quota: 8 },
    { id: "G-small", thresholdFen: 10_000, discountFen: 1_000, quota: 8 },
  ],
);
const PARTITIONS = 4;
const paidAtMs = Date.parse("2020-09-13T10:00:00+08:00");

let world: TestWorld;
let pipelined: Db;
let seq = 0;

beforeAll(async () => {
  world = await createTestWorld("group_round", { campaigns: [campaign], partitions: PARTITIONS });
  pipelined = connect({
    connectionString: world.databaseUrl,
    poolMax: 2,
    statementTimeoutMs: 30_000,
    applicationName: "group-round",
    keyLookupsOnly: true,
    pipeline: true,
  });
});

afterAll(async () => {
  await pipelined?.close();
  await world?.cleanup();
});

// Every case sets the stock it needs; attempts from earlier cases are deleted (a fresh campaign each time).
beforeEach(async () => {
  await sql`delete from attempts`.execute(world.db.kysely);
  await sql`update tiers set quota = 8, pool = 8, sold_out_at = null`.execute(world.db.kysely);
  await sql`update tier_shares set remaining = 0`.execute(world.db.kysely);
});

/** Puts a tier's stock where a case wants it: the rest of the quota stays in the pool. */
async function stock(tierId: string, shares: Record<number, number>): Promise<void> {
  let inShares = 0;
  for (const [partition, n] of Object.entries(shares)) {
    await sql`update tier_shares set remaining = ${n} where tier_id = ${tierId} and partition = ${Number(partition)}`.execute(
      world.db.kysely,
    );
    inShares += n;
  }
  await sql`update tiers set pool = quota - ${inShares} where id = ${tierId}`.execute(world.db.kysely);
}

async function setPool(tierId: string, pool: number): Promise<void> {
  // Vouchers not in any share nor the pool are accounted as granted by verify; the cases that
  // shrink the pool shrink the quota with it.
  await sql`update tiers set quota = quota - (pool - ${pool}), pool = ${pool} where id = ${tierId}`.execute(
    world.db.kysely,
  );
}

function payer(partition: number): string {
  return payerInPartition(`payer-${seq++}-`, partition, PARTITIONS);
}

function attempt(
  partition: number,
  amountFen: number,
  receivedAtMs: number,
  payerId = payer(partition),
): QueuedAttempt {
  const payment = { txnId: `r-${seq++}`, payerId, merchantId: "G-1", amountFen, paidAtMs };
  const c = classify(payment, [campaign]);
  if (c.kind !== "needs_stock") throw new Error("expected a stock request");
  return { acquirerId: "acq", bodyHash: `h-${payment.txnId}`, payment, receivedAtMs, partition, request: c.request };
}

async function epochs(): Promise<number[]> {
  const rows = await sql<{
    partition: number;
    epoch: string;
  }>`select partition, epoch from partitions order by partition`.execute(world.db.kysely);
  return rows.rows.map((r) => Number(r.epoch));
}

async function batchesOf(attempts: QueuedAttempt[]) {
  const e = await epochs();
  const byPartition = new Map<number, QueuedAttempt[]>();
  for (const a of attempts) byPartition.set(a.partition, [...(byPartition.get(a.partition) ?? []), a]);
  return [...byPartition].map(([partition, as]) => ({ partition, epoch: e[partition]!, attempts: as }));
}

async function campaignsById() {
  return new Map((await readCampaigns(world.db.kysely)).map((c) => [c.id, c]));
}

/** Rounds and refills until every attempt is decided, as a worker runs them; results in commit order. */
async function rounds(
  attempts: QueuedAttempt[],
): Promise<{ results: BatchResult[]; commits: number; refills: RefillResult[] }> {
  const results: BatchResult[] = [];
  const refills: RefillResult[] = [];
  let commits = 0;
  await decideRounds(pipelined.pool, await batchesOf(attempts), await campaignsById(), PARTITIONS, {
    retry: { attemptsMax: 1, baseDelayMs: 1, delayMaxMs: 1 },
    onCommit: (r) => {
      commits++;
      results.push(...r);
    },
    onRefill: (move) => refills.push(move.result),
  });
  return { results, commits, refills };
}

async function shares(tierId: string): Promise<number[]> {
  const rows = await sql<{
    remaining: number;
  }>`select remaining from tier_shares where tier_id = ${tierId} order by partition`.execute(world.db.kysely);
  return rows.rows.map((r) => r.remaining);
}

async function pool(tierId: string): Promise<{ pool: number; soldOut: boolean }> {
  const row = (
    await sql<{
      pool: number;
      sold_out: boolean;
    }>`select pool, sold_out_at is not null as sold_out from tiers where id = ${tierId}`.execute(world.db.kysely)
  ).rows[0]!;
  return { pool: row.pool, soldOut: row.sold_out };
}

async function invariantsHold(): Promise<void> {
  const failed = (await verifyDatabaseInvariants(world.db.kysely, "round")).filter((c) => !c.ok);
  expect(failed).toEqual([]);
}

describe("group round", () => {
  it("grants out of another partition's share of the round before it asks the pool", async () => {
    // Partitions 0 and 1 are in the round; all their stock sits in partition 1's share.
    await stock("G-big", { 1: 3 });
    const outcome = await rounds([attempt(0, 60_000, 1), attempt(0, 60_000, 2), attempt(1, 60_000, 3)]);
    expect(outcome.results.map((r) => r.kind === "decided" && r.row.tier_id)).toEqual(["G-big", "G-big", "G-big"]);
    expect(outcome).toMatchObject({ commits: 1, refills: [] });
    expect(await shares("G-big")).toEqual([0, 0, 0, 0]);
    expect((await pool("G-big")).pool).toBe(5);
    await invariantsHold();
  });

  it("decides the round in arrival order whatever the partition: the earlier payment gets the last voucher", async () => {
    await stock("G-big", { 0: 1 });
    await setPool("G-big", 0);
    // Partition 0 comes first in partition order and holds the last big voucher; partition 2's
    // payment came first, so it gets it, and partition 0's, once a refill found the tier empty,
    // falls back to the small tier.
    const late = attempt(0, 60_000, 2_000);
    const early = attempt(2, 60_000, 1_000);
    const outcome = await rounds([late, early]);
    const byTxn = new Map(outcome.results.map((r) => [r.attempt.payment.txnId, r]));
    expect(byTxn.get(early.payment.txnId)).toMatchObject({
      kind: "decided",
      row: { status: "granted", tier_id: "G-big" },
    });
    expect(byTxn.get(late.payment.txnId)).toMatchObject({
      kind: "decided",
      row: { status: "granted", tier_id: "G-small" },
    });
    expect(outcome.refills).toEqual(["empty", "pool"]);
    expect(await pool("G-big")).toEqual({ pool: 0, soldOut: true });
    await invariantsHold();
  });

  it("a round that runs dry commits what it decided and defers the rest, in arrival order, with the refill they wait for", async () => {
    await stock("G-big", { 0: 1, 3: 2 });
    await setPool("G-big", 0);
    const first = attempt(0, 60_000, 1);
    const second = attempt(1, 60_000, 2);
    const third = attempt(0, 60_000, 3);
    const outcome = await decideGroupTx(
      pipelined.pool,
      await batchesOf([third, first, second]),
      await campaignsById(),
      PARTITIONS,
    );
    expect(outcome.results).toEqual([expect.objectContaining({ attempt: first, kind: "decided", fresh: true })]);
    expect(outcome.deferred).toEqual([second, third]);
    expect(outcome.refill).toEqual({
      partition: 1,
      campaignId: "round",
      tierId: "G-big",
      need: 2,
      partitionsAsking: 2,
    });
    // Committed: the grant is stored and its voucher gone from partition 0's share; partition 3
    // (not in the round) still holds two.
    expect(await shares("G-big")).toEqual([0, 0, 0, 2]);
    const stored = await sql<{ n: string }>`select count(*) as n from attempts`.execute(world.db.kysely);
    expect(Number(stored.rows[0]!.n)).toBe(1);
  });

  it("takes from the pool inside the round when it can lock the tier row at once, and defers when the row is busy", async () => {
    await stock("G-big", {});
    const busy = await pipelined.pool.connect();
    try {
      await busy.query("begin");
      await busy.query("select 1 from tiers where id = 'G-big' for update"); // a refund or another owner's refill
      const first = attempt(0, 60_000, 1);
      const waiting = await decideGroupTx(pipelined.pool, await batchesOf([first]), await campaignsById(), PARTITIONS);
      expect(waiting).toMatchObject({ results: [], deferred: [first], refills: [], refill: { tierId: "G-big" } });
      await busy.query("commit");
    } finally {
      busy.release();
    }
    const a = attempt(0, 60_000, 2);
    const taken = await decideGroupTx(pipelined.pool, await batchesOf([a]), await campaignsById(), PARTITIONS);
    expect(taken).toMatchObject({ refills: ["pool"], deferred: [] });
    expect(taken.results).toEqual([
      expect.objectContaining({ attempt: a, row: expect.objectContaining({ status: "granted", tier_id: "G-big" }) }),
    ]);
    // A chunk (quota 8 / (8 x 4 partitions): 1) per asking partition, or what the attempts need: 1 taken, 1 used.
    expect(await shares("G-big")).toEqual([0, 0, 0, 0]);
    expect((await pool("G-big")).pool).toBe(7);
    await invariantsHold();
  });

  it("a refill sweeps another owner's share into the pool after the round committed, and the next round grants from it", async () => {
    await stock("G-big", { 0: 2, 3: 1 });
    await setPool("G-big", 0);
    const outcome = await rounds([attempt(0, 60_000, 1), attempt(0, 60_000, 2), attempt(1, 60_000, 3)]);
    expect(outcome.results.map((r) => r.kind === "decided" && r.row.tier_id)).toEqual(["G-big", "G-big", "G-big"]);
    expect(outcome).toMatchObject({ commits: 2, refills: ["swept"] });
    expect(await shares("G-big")).toEqual([0, 0, 0, 0]);
    expect((await pool("G-big")).pool).toBe(0);
    await invariantsHold();
  });

  it("answers a repeat of a deferred attempt with its first copy's decision", async () => {
    await stock("G-big", { 3: 1 });
    await setPool("G-big", 0);
    const a = attempt(0, 60_000, 1);
    const outcome = await rounds([a, { ...a, receivedAtMs: 2 }]);
    // Both copies deferred by the first round (the pool is empty), then one refill and one round.
    expect(outcome).toMatchObject({ commits: 2, refills: ["swept"] });
    expect(outcome.results).toHaveLength(2);
    expect(outcome.results.map((r) => r.kind === "decided" && [r.row.tier_id, r.fresh])).toEqual([
      ["G-big", true],
      ["G-big", false],
    ]);
    await invariantsHold();
  });
});

describe("the ingress's own decisions", () => {
  const record = (txnId: string, bodyHash: string, payerId = "p-alone"): ImmediateRecord => ({
    record: {
      acquirerId: "acq",
      bodyHash,
      payment: { txnId, payerId, merchantId: "G-1", amountFen: 5_000, paidAtMs },
      receivedAtMs: 1,
      partition: 0,
      decision: { status: "rejected", reason: "below_threshold", campaignId: "round", activityId: "G" },
      decidedBy: "ingress",
    },
    checkHolder: false,
  });

  it("stores many in one statement, and a copy stored before answers with its row", async () => {
    const first = await recordImmediateBatch(pipelined.pool, pipelined.kysely, [
      record("alone-1", "h-1"),
      record("alone-2", "h-2"),
    ]);
    expect([...first.stored.values()].map((r) => [r.txn_id, r.body_hash, r.reason])).toEqual([
      ["alone-1", "h-1", "below_threshold"],
      ["alone-2", "h-2", "below_threshold"],
    ]);
    // Another body of the same txn: not stored again, answered with the first row (the caller says 409).
    const again = await recordImmediateBatch(pipelined.pool, pipelined.kysely, [record("alone-1", "h-other")]);
    expect([...again.stored.values()]).toEqual([expect.objectContaining({ txn_id: "alone-1", body_hash: "h-1" })]);
  });

  it("stores a sold_out of a payer a committed round granted as already_redeemed", async () => {
    await stock("G-small", { 0: 1 });
    await sql`update tiers set pool = 0, quota = 1, sold_out_at = clock_timestamp() where id = 'G-big'`.execute(
      world.db.kysely,
    );
    const grant = attempt(0, 20_000, 1);
    expect((await rounds([grant])).results[0]).toMatchObject({
      kind: "decided",
      row: { status: "granted", tier_id: "G-small" },
    });
    const refusal: ImmediateRecord = {
      record: {
        acquirerId: "acq",
        bodyHash: "h-imm",
        payment: { txnId: "imm-1", payerId: grant.payment.payerId, merchantId: "G-1", amountFen: 60_000, paidAtMs },
        receivedAtMs: 2,
        partition: 0,
        decision: { status: "rejected", reason: "sold_out", campaignId: "round", activityId: "G" },
        decidedBy: "ingress",
      },
      checkHolder: true,
      soldOutTiers: ["G-big"],
    };
    const out = await recordImmediateBatch(pipelined.pool, pipelined.kysely, [refusal]);
    expect(out.stored.get("acq/imm-1")).toMatchObject({ status: "rejected", reason: "already_redeemed" });
  });
});
