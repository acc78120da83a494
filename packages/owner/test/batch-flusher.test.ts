import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { payerInPartition, type QueuedAttempt } from "@quanta/domain";
import { FencedOutError, claimPartition, findAttempts, type BatchResult, type CampaignCache } from "@quanta/db";
import { createOwnerWorld, until, type OwnerWorld, type TestWorld } from "@quanta/test-kit";
import { createLogger } from "@quanta/telemetry";
import { createRedis, keys, keysMatching, waitKey, type QuantaRedis } from "@quanta/queue";
import { BatchFlusher, type FlushItem } from "@quanta/owner";

/**
 * The batch flusher, the one writer of a worker process, against a real Postgres and Redis:
 * attempts of several partitions commit in one transaction, their decisions are published to the
 * waiting ingress (each under its txn and body) and their registrations deleted; a stale epoch is fenced
 * without taking the round (or the newer drain of the partition) down with it.
 */
let owner: OwnerWorld;
let world: TestWorld;
let redis: QuantaRedis;
let campaigns: CampaignCache;
const PARTITIONS = 4;

beforeAll(async () => {
  owner = await createOwnerWorld("flusher", PARTITIONS);
  ({ world, redis, campaigns } = owner);
});

afterAll(async () => {
  await owner?.close();
});

function attemptIn(partition: number, txnId: string): QueuedAttempt {
  return {
    acquirerId: world.acquirerId,
    bodyHash: `h-${txnId}`,
    payment: {
      txnId,
      payerId: payerInPartition(`${txnId}-payer-`, partition, PARTITIONS),
      merchantId: "M-0001",
      amountFen: 250_000,
      paidAtMs: Date.parse("2020-09-13T10:00:00+08:00"),
    },
    receivedAtMs: Date.now(),
    partition,
    request: { campaignId: "qianan-2020-b2", activityId: "A2", tierIds: ["A2-400"] },
  };
}

function park(
  flusher: BatchFlusher,
  partition: number,
  epoch: number,
  attempts: QueuedAttempt[],
  fenced: string[],
  replyTo = "",
): Promise<BatchResult[]> {
  return new Promise((resolve, reject) => {
    const item: FlushItem = {
      partition,
      epoch,
      attempts,
      replyTo,
      resolve,
      reject,
      onFenced: () => fenced.push(`${partition}@${epoch}`),
    };
    flusher.park(item);
  });
}

describe("batch flusher", () => {
  it("decides several partitions in one commit, publishes the answers, deletes the registrations; fences a stale epoch alone", async () => {
    const log = createLogger("flusher-test", "silent");
    const flusher = new BatchFlusher(world.db.pool, redis, campaigns, log, {
      prefix: world.prefix,
      partitionCount: PARTITIONS,
      batchMax: 512,
      roundGapMs: 0,
    });
    const epochs: number[] = [];
    for (let p = 0; p < PARTITIONS; p++) epochs.push(await claimPartition(world.db.kysely, p, "flusher-test"));
    const old0 = epochs[0]!;
    const new0 = await claimPartition(world.db.kysely, 0, "flusher-test"); // partition 0 taken again

    // What an ingress left in Redis for these attempts: a registration each (one of them naming
    // another body: it goes too, Postgres answers for the txn now), and a subscription.
    const txns = ["f-0", "f-1", "f-1b", "f-2", "f-2b", "f-3", "f-3b"];
    for (const t of txns)
      await redis.set(keys.txn(world.prefix, world.acquirerId, t), t === "f-3b" ? "h-another-body" : `h-${t}`);
    const subscriber = createRedis(world.env.REDIS_URL!, "flusher-test-sub", { subscriber: true });
    onTestFinished(() => subscriber.disconnect()); // also when an assertion below fails
    const messages: { answers: [string, unknown][] }[] = [];
    await subscriber.ssubscribe(keys.decisions(world.prefix, "ingress-x"));
    subscriber.on("smessage", (_channel: string, message: string) => messages.push(JSON.parse(message)));

    const fenced: string[] = [];
    const stale = park(flusher, 0, old0, [attemptIn(0, "f-stale")], fenced);
    const fresh = park(flusher, 0, new0, [attemptIn(0, "f-0")], fenced, "ingress-x");
    const others = [1, 2, 3].map((p) =>
      park(flusher, p, epochs[p]!, [attemptIn(p, `f-${p}`), attemptIn(p, `f-${p}b`)], fenced, "ingress-x"),
    );

    await expect(stale).rejects.toBeInstanceOf(FencedOutError);
    expect(fenced).toEqual([]); // the older drain is already gone: nobody is told to drop the newer one
    const decided = [await fresh, ...(await Promise.all(others))].flat();
    expect(decided.map((r) => r.kind === "decided" && r.row.status)).toEqual(Array(7).fill("granted"));
    expect(await findAttempts(world.db.kysely, [{ acquirerId: world.acquirerId, txnId: "f-stale" }])).toEqual([]);
    // One round: the four partitions' batches were written by one transaction (one xmin on every row).
    const writers = await world.db.pool.query<{ xmin: string }>(
      "select distinct xmin::text from attempts where txn_id = any($1::text[])",
      [txns],
    );
    expect(writers.rows).toHaveLength(1);
    // One message for the waiting ingress, with every answer, each under its txn and body; every
    // registration gone.
    await until("the decisions published", 10_000, () => messages.length > 0);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.answers.map(([key]) => key).sort()).toEqual(
      txns.map((t) => waitKey(world.acquirerId, t, `h-${t}`)).sort(),
    );
    expect(await keysMatching(redis, keys.txnPattern(world.prefix))).toEqual([]);

    // A drain whose epoch moved on alone: fenced, and told so.
    await claimPartition(world.db.kysely, 2, "someone-else");
    const zombie = park(flusher, 2, epochs[2]!, [attemptIn(2, "f-zombie")], fenced);
    const alongside = park(flusher, 3, epochs[3]!, [attemptIn(3, "f-3c")], fenced);
    await expect(zombie).rejects.toBeInstanceOf(FencedOutError);
    expect(fenced).toEqual([`2@${epochs[2]}`]);
    expect((await alongside).map((r) => r.kind === "decided" && r.row.status)).toEqual(["granted"]);
    expect(await findAttempts(world.db.kysely, [{ acquirerId: world.acquirerId, txnId: "f-zombie" }])).toEqual([]);
  });
});
