import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { randomBytes } from "node:crypto";
import { Queue } from "bullmq";
import { PrivateRedisCluster, deletePrefix } from "@quanta/cli";
import {
  admitBatch,
  createRedis,
  isCluster,
  keys,
  keysMatching,
  lookupTxn,
  queueName,
  queuePrefix,
  readBacklogs,
  shardSubscribers,
  slotOf,
  type AdmitEntry,
  type QuantaRedis,
} from "@quanta/queue";

/**
 * Admission and decision delivery on a single Redis and on a real Redis Cluster (3 masters, one
 * replica each, started here): the registry meets two bodies of one txn on one key whatever
 * partitions their payers hash to; the backlog bound holds per partition and so in total; a
 * partition's keys and queue share one slot and partitions spread over the masters; decisions
 * travel on sharded channels.
 */
const limits = { backlogMaxPerPartition: 3, ttlS: 60, immediateTtlS: 60 };
const entry = (txnId: string, bodyHash: string, partition: number, mode: AdmitEntry["mode"] = "queue"): AdmitEntry => ({
  acquirerId: "acq",
  txnId,
  bodyHash,
  mode,
  partition,
});

const targets: [string, () => Promise<{ url: string; stop: () => Promise<void> }>][] = [
  [
    "a single Redis",
    async () => ({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379", stop: async () => undefined }),
  ],
  [
    "a Redis Cluster (3 masters, 3 replicas)",
    async () => {
      const cluster = await PrivateRedisCluster.start();
      return { url: cluster.url, stop: () => cluster.stop() };
    },
  ],
];

describe.each(targets)("admission on %s", (_name, boot) => {
  let target: { url: string; stop: () => Promise<void> };
  let redis: QuantaRedis;
  const prefix = `quanta-test-admit-${process.pid}-${randomBytes(2).toString("hex")}`;

  beforeAll(async () => {
    target = await boot();
    redis = createRedis(target.url, "admit-test", { autoPipelining: true });
  });

  afterAll(async () => {
    redis?.disconnect();
    await deletePrefix(target.url, prefix).catch(() => 0);
    await target?.stop();
  });

  it("registers first bodies, and meets another body of a txn on the same key even from another partition (409)", async () => {
    const first = await admitBatch(
      redis,
      prefix,
      [entry("t-1", "h1", 0), entry("t-2", "h2", 1), entry("t-1", "h1", 0)],
      limits,
    );
    expect(first.codes).toEqual(["first", "first", "repeat"]);
    // Another payer (so partition 1) with another body for t-1: the registry is keyed by txn.
    const again = await admitBatch(
      redis,
      prefix,
      [entry("t-1", "h1-other", 1), entry("t-2", "h2", 1, "requeue"), entry("t-3", "h3", 2, "immediate")],
      limits,
    );
    expect(again.codes).toEqual(["conflict", "requeued", "first"]);
    expect(await readBacklogs(redis, prefix, 3)).toEqual([1, 2, 0]); // t-1 | t-2 and its requeue | the immediate takes none
  });

  it("marks a body the ingress stores itself, meets its copies and other bodies as any, and unmarks it when it is queued after all", async () => {
    // Out of the way of the tests below, which count registrations and backlog room, pass or fail.
    const roomBefore = (await redis.get(keys.backlog(prefix, 0))) ?? "0";
    onTestFinished(async () => {
      await redis.del(keys.txn(prefix, "acq", "i-1"));
      await redis.set(keys.backlog(prefix, 0), roomBefore);
    });
    // A short TTL for a body the ingress stores (it deletes the key once stored), a long one once queued.
    const marked = { ...limits, immediateTtlS: 5 };
    const first = await admitBatch(
      redis,
      prefix,
      [entry("i-1", "hi", 0, "immediate"), entry("i-1", "hi", 0, "immediate"), entry("i-1", "hi-other", 0)],
      marked,
    );
    expect(first.codes).toEqual(["first", "repeat", "conflict"]);
    // GET /v1/attempts reads the mark: such a txn is not pending (no queue job promises a decision).
    expect(await lookupTxn(redis, prefix, "acq", "i-1")).toEqual({ bodyHash: "hi", storedByIngress: true });
    expect((await admitBatch(redis, prefix, [entry("i-1", "hi-other", 1)], marked)).codes).toEqual(["conflict"]);
    const markedTtlS = await redis.ttl(keys.txn(prefix, "acq", "i-1"));
    expect(markedTtlS > 0 && markedTtlS <= 5, `TTL ${markedTtlS} s`).toBe(true);
    // A copy queued after all (a sold_out whose tier got stock back): the plain hash, a queued txn's TTL.
    expect((await admitBatch(redis, prefix, [entry("i-1", "hi", 0, "requeue")], marked)).codes).toEqual(["requeued"]);
    expect(await lookupTxn(redis, prefix, "acq", "i-1")).toEqual({ bodyHash: "hi", storedByIngress: false });
    expect(await redis.ttl(keys.txn(prefix, "acq", "i-1"))).toBeGreaterThan(5);
    expect(await lookupTxn(redis, prefix, "acq", "never-1")).toBeUndefined();
  });

  it("refuses a full partition's attempts without registering them, and admits another partition's", async () => {
    // Partition 0 holds 1 of 3; three more do not fit: all three refused (all or nothing per partition).
    const r = await admitBatch(
      redis,
      prefix,
      [
        entry("f-1", "a", 0),
        entry("f-2", "b", 0),
        entry("f-3", "c", 0),
        entry("g-1", "d", 2),
        entry("f-1", "a-other", 1),
      ],
      limits,
    );
    // f-1's other body (another payer, a partition with room) is the first body seen: the refused
    // copy registered nothing, so nobody is ever answered 409 against a body that was refused.
    expect(r.codes).toEqual(["overloaded", "overloaded", "overloaded", "first", "first"]);
    expect(await readBacklogs(redis, prefix, 3)).toEqual([1, 3, 1]);
    const registered = await keysMatching(redis, keys.txnPattern(prefix));
    expect(registered).toEqual(["f-1", "g-1", "t-1", "t-2", "t-3"].map((t) => keys.txn(prefix, "acq", t)).sort());
    expect(await redis.get(keys.txn(prefix, "acq", "f-1"))).toBe("a-other");
    // The total can never pass partitions x the per-partition bound.
    const fill = await admitBatch(
      redis,
      prefix,
      Array.from({ length: 12 }, (_, i) => entry(`x-${i}`, "x", i % 3)),
      limits,
    );
    expect(fill.codes.filter((c) => c === "first")).toEqual([]); // every partition would pass 3
    for (const b of await readBacklogs(redis, prefix, 3)) expect(b).toBeLessThanOrEqual(limits.backlogMaxPerPartition);
  });

  it("gives back the room of repeats and conflicts, and takes back everything when a call fails", async () => {
    const p = 7;
    expect(
      (await admitBatch(redis, prefix, [entry("r-1", "r", p), entry("r-1", "r", p), entry("r-1", "other", p)], limits))
        .codes,
    ).toEqual(["first", "repeat", "conflict"]);
    expect(await redis.get(keys.backlog(prefix, p))).toBe("1"); // three reserved, two given back
    // A registration that fails (a wrong TTL makes SET EX refuse) leaves no room and no registration behind.
    await expect(
      admitBatch(redis, prefix, [entry("r-2", "r", p), entry("r-3", "r", p)], { ...limits, ttlS: -1 }),
    ).rejects.toThrow();
    expect(await redis.get(keys.backlog(prefix, p))).toBe("1");
    expect([
      await redis.exists(keys.txn(prefix, "acq", "r-2")),
      await redis.exists(keys.txn(prefix, "acq", "r-3")),
    ]).toEqual([0, 0]);
  });

  it("counts a backlog counter that drifted below zero (a failover lost a reservation) from zero, not as a refusal", async () => {
    await redis.set(keys.backlog(prefix, 5), "-4");
    expect((await admitBatch(redis, prefix, [entry("d-1", "d", 5)], limits)).codes).toEqual(["first"]);
    expect(await redis.get(keys.backlog(prefix, 5))).toBe("1");
  });

  it("keeps a partition's queue, backlog and lease in one slot, and (on a cluster) spreads partitions over the masters", async () => {
    const slots = [0, 1, 2].map(
      (p) =>
        new Set(
          [
            keys.backlog(prefix, p),
            keys.lease(prefix, p),
            keys.bull(prefix, p, "wait"),
            `${queuePrefix(prefix, p)}:${queueName(p)}:id`,
          ].map((k) => slotOf(k)),
        ),
    );
    for (const s of slots) expect(s.size).toBe(1);
    // BullMQ writes its queue under the partition's tag: the job lands where the backlog is.
    const queue = new Queue(queueName(1), {
      connection: createRedis(target.url, "admit-test-queue"),
      prefix: queuePrefix(prefix, 1),
      skipVersionCheck: true,
    });
    try {
      await queue.add("batch", { replyTo: "", attempts: [] }, { removeOnComplete: true });
      expect(await queue.getWaitingCount()).toBe(1);
    } finally {
      await queue.close();
      await queue.disconnect();
    }
    if (isCluster(redis)) {
      const owners = new Set(
        await Promise.all(
          [0, 1, 2].map(async (p) => (await redis.call("CLUSTER", "KEYSLOT", keys.backlog(prefix, p))) as number),
        ),
      );
      expect(owners.size).toBe(3);
      const masters = redis.nodes("master").map((n) => `${n.options.host}:${n.options.port}`);
      const cluster = redis; // narrowed: a callback does not see the narrowing of a `let`
      const servedBy = new Set([...owners].map((slot) => cluster.slots[slot]![0]));
      expect(masters.length).toBe(3);
      expect(servedBy.size).toBe(3); // partitions 0, 1 and 2 on three different masters
    }
  });

  it("delivers a decision on a sharded channel to its one subscriber", async () => {
    const subscriber = createRedis(target.url, "admit-test-sub", { subscriber: true });
    const channel = keys.decisions(prefix, "ingress-a");
    try {
      const got = new Promise<string>((resolve) =>
        subscriber.on("smessage", (ch: string, message: string) => ch === channel && resolve(message)),
      );
      await subscriber.ssubscribe(channel);
      expect(await shardSubscribers(redis, channel)).toBe(1);
      expect(await shardSubscribers(redis, keys.decisions(prefix, "nobody"))).toBe(0);
      await redis.spublish(channel, JSON.stringify({ answers: [["acq/t-1#h1", { status: "granted" }]] }));
      expect(JSON.parse(await got)).toEqual({ answers: [["acq/t-1#h1", { status: "granted" }]] });
    } finally {
      subscriber.disconnect();
    }
  });
});
