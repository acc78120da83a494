import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { partitionOf, type QueuedAttempt } from "@quanta/domain";
import { CampaignCache, FencedOutError, claimPartition, findAttempts, type BatchResult } from "@quanta/db";
import { createTestWorld, type TestWorld } from "@quanta/cli";
import { createLogger } from "@quanta/telemetry";
import { createRedis, type QuantaRedis } from "@quanta/queue";
import { BatchFlusher, type FlushItem } from "@quanta/owner";

/**
 * The batch flusher, the one writer of an owner process, against a real
 * Postgres: attempts of several partitions and the ingress's own decisions
 * commit in one transaction; a stale epoch is fenced without taking the
 * round (or the newer drain of the partition) down with it.
 */
let world: TestWorld;
let redis: QuantaRedis;
let campaigns: CampaignCache;
const PARTITIONS = 4;

beforeAll(async () => {
  world = await createTestWorld("flusher", { partitions: PARTITIONS });
  redis = createRedis(world.env.REDIS_URL!, "flusher-test");
  campaigns = new CampaignCache(world.db.kysely, () => undefined, 60_000);
  await campaigns.refresh();
});

afterAll(async () => {
  redis?.disconnect();
  await world?.cleanup();
});

function attemptIn(partition: number, txnId: string): QueuedAttempt {
  for (let i = 0; ; i++) {
    const payerId = `${txnId}-payer-${i}`;
    if (partitionOf(payerId, PARTITIONS) !== partition) continue;
    return {
      acquirerId: world.acquirerId,
      bodyHash: `h-${txnId}`,
      payment: { txnId, payerId, merchantId: "M-0001", amountFen: 250_000, paidAtMs: Date.parse("2020-09-13T10:00:00+08:00") },
      receivedAtMs: Date.now(),
      partition,
      request: { campaignId: "qianan-2020-b2", activityId: "A2", tierIds: ["A2-400"] },
    };
  }
}

function park(flusher: BatchFlusher, partition: number, epoch: number, attempts: QueuedAttempt[], fenced: string[]): Promise<BatchResult[]> {
  return new Promise((resolve, reject) => {
    const item: FlushItem = { partition, epoch, attempts, replyTo: "", queued: false, resolve, reject, onFenced: () => fenced.push(`${partition}@${epoch}`) };
    flusher.park(item);
  });
}

describe("batch flusher", () => {
  it("decides several partitions and stores immediate decisions in one commit; fences a stale epoch alone", async () => {
    const log = createLogger("flusher-test", "silent");
    const flusher = new BatchFlusher(world.db.kysely, world.db.pool, redis, campaigns, log, {
      prefix: world.prefix,
      partitionCount: PARTITIONS,
      batchMax: 512,
      roundGapMs: 0,
    });
    const epochs = [];
    for (let p = 0; p < PARTITIONS; p++) epochs.push(await claimPartition(world.db.kysely, p, "flusher-test"));
    const old0 = epochs[0]!;
    const new0 = await claimPartition(world.db.kysely, 0, "flusher-test"); // partition 0 taken again

    const fenced: string[] = [];
    const stale = park(flusher, 0, old0, [attemptIn(0, "f-stale")], fenced);
    const fresh = park(flusher, 0, new0, [attemptIn(0, "f-0")], fenced);
    const others = [1, 2, 3].map((p) => park(flusher, p, epochs[p]!, [attemptIn(p, `f-${p}`), attemptIn(p, `f-${p}b`)], fenced));
    const refusal = attemptIn(1, "f-imm");
    const immediate = flusher.storeImmediate([
      {
        record: { ...refusal, decision: { status: "rejected", reason: "below_threshold" }, decidedBy: "ingress" },
        checkHolder: false,
      },
    ]);

    await expect(stale).rejects.toBeInstanceOf(FencedOutError);
    expect(fenced).toEqual([]); // the older drain is already gone: nobody is told to drop the newer one
    const decided = [await fresh, ...(await Promise.all(others))].flat();
    expect(decided.map((r) => r.kind === "decided" && r.row.status)).toEqual(Array(7).fill("granted"));
    expect([...(await immediate).stored.values()].map((r) => [r.txn_id, r.reason])).toEqual([["f-imm", "below_threshold"]]);
    expect(await findAttempts(world.db.kysely, [{ acquirerId: world.acquirerId, txnId: "f-stale" }])).toEqual([]);
    // One round: the four partitions' batches and the immediate decision were written by one
    // transaction (one xmin on every row).
    const writers = await world.db.pool.query<{ xmin: string }>(
      "select distinct xmin::text from attempts where txn_id = any($1::text[])",
      [["f-0", "f-1", "f-1b", "f-2", "f-2b", "f-3", "f-3b", "f-imm"]],
    );
    expect(writers.rows).toHaveLength(1);

    // A drain whose epoch moved on alone: fenced, and told so; an immediate decision of the same
    // round is still stored.
    await claimPartition(world.db.kysely, 2, "someone-else");
    const zombie = park(flusher, 2, epochs[2]!, [attemptIn(2, "f-zombie")], fenced);
    const alongside = flusher.storeImmediate([
      { record: { ...attemptIn(3, "f-imm2"), decision: { status: "rejected", reason: "below_threshold" }, decidedBy: "ingress" }, checkHolder: false },
    ]);
    await expect(zombie).rejects.toBeInstanceOf(FencedOutError);
    expect(fenced).toEqual([`2@${epochs[2]}`]);
    expect([...(await alongside).stored.values()].map((r) => r.txn_id)).toEqual(["f-imm2"]);
    expect(await findAttempts(world.db.kysely, [{ acquirerId: world.acquirerId, txnId: "f-zombie" }])).toEqual([]);
  });
});
