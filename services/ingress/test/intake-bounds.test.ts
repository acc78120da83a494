import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { PrivateRedis } from "@quanta/cli";
import { createTestWorld, until, type TestWorld } from "@quanta/test-kit";
import { createRedis, keys, queueName, queuePrefix } from "@quanta/queue";
import { Intake, type IntakeEntry } from "../src/intake.js";

/**
 * The intake's two limits against a stalled Redis (a private one, paused with CLIENT PAUSE):
 * at most pendingMax attempts are held (the next is refused at once, without touching Redis),
 * and a batch Redis does not admit within admitTimeoutMs is answered unavailable (503) with
 * nothing queued, and nothing left registered or reserved once the late admission has run.
 */
let redis: PrivateRedis;
let world: TestWorld;

beforeAll(async () => {
  redis = await PrivateRedis.start();
  world = await createTestWorld("intake_bounds");
}, 60_000);

afterAll(async () => {
  await world?.cleanup();
  await redis?.stop();
});

const entry = (i: number): IntakeEntry => ({
  attempt: {
    acquirerId: "acq",
    bodyHash: `h${i}`,
    payment: {
      txnId: `b-${i}`,
      payerId: `p-${i}`,
      merchantId: "M-0001",
      amountFen: 250_000,
      paidAtMs: Date.parse("2020-09-13T10:00:00+08:00"),
    },
    receivedAtMs: Date.now(),
    partition: 0,
    request: { campaignId: "qianan-2020-b2", activityId: "A2", tierIds: ["A2-400"] },
  },
});

describe("intake limits", () => {
  it("holds at most pendingMax attempts and answers unavailable when Redis stalls past the admit timeout", async () => {
    const conn = createRedis(redis.url, "intake-bounds", { autoPipelining: true });
    const queue = new Queue(queueName(0), {
      connection: conn,
      prefix: queuePrefix("bounds", 0),
      skipVersionCheck: true,
    });
    const admin = new Redis(redis.url);
    const intake = new Intake(
      // Nobody decides here: a queued attempt's wait simply ends (the ingress would answer 202).
      {
        redis: conn,
        queues: [queue],
        db: world.db.kysely,
        immediates: { store: () => Promise.reject(new Error("nothing here needs no stock")) },
        waits: { wait: () => ({ result: Promise.resolve({ kind: "timeout" as const }), cancel: () => undefined }) },
      },
      {
        prefix: "bounds",
        replyTo: "test",
        batchMax: 64,
        flushMs: 1,
        backlogMaxPerPartition: 1_000,
        retentionS: 0,
        txnRegistryTtlS: 60,
        txnInFlightTtlS: 60,
        decisionWaitMs: 100,
        admitTimeoutMs: 300,
        pendingMax: 3,
        redisWaitReplicas: 0,
        redisWaitTimeoutMs: 100,
        settleMs: 1_000,
      },
    );
    try {
      await admin.call("CLIENT", "PAUSE", "2000", "ALL");
      const settled: number[] = [];
      const submit = (i: number) => intake.submit(entry(i)).then((answer) => (settled.push(i), answer));
      const held = [0, 1, 2].map(submit);
      expect(await submit(3)).toEqual({ kind: "overloaded" });
      // Refused at once: settled before any of the held three, which wait on the paused Redis.
      expect(settled).toEqual([3]);
      // "unavailable" comes only from the admit timeout: had Redis come back first, they were queued.
      expect(await Promise.all(held)).toEqual([
        { kind: "unavailable" },
        { kind: "unavailable" },
        { kind: "unavailable" },
      ]);
      // Postponed by the pause, and behind the admission's first step on the intake's own
      // connection (one connection's commands run in order): once this answers, the late
      // admission has reserved its room (3), and registers next; the counter is back at 0 only
      // after its undo, which comes after the registrations.
      await conn.ping();
      // (Its room may be back already: the undo runs on that connection too.)
      const backlog = async () => Number((await admin.get(keys.backlog("bounds", 0))) ?? 0);
      // What the late admission reserved and registered is taken back (its undo follows the
      // admission's reply: the room first, then the registrations): another body of these txns is
      // free to be accepted (before, a 503'd txn stayed registered for the TTL).
      await until("the late admission's room given back", 10_000, async () => (await backlog()) === 0);
      await until(
        "its registrations taken back",
        10_000,
        async () => (await admin.keys(keys.txnPattern("bounds"))).length === 0,
      );
      expect(await admin.keys(keys.txnPattern("bounds"))).toEqual([]);
      expect(await queue.getJobCounts("wait", "active")).toEqual({ wait: 0, active: 0 }); // nothing was queued
      expect(Number((await admin.get(keys.backlog("bounds", 0))) ?? 0)).toBe(0);
      expect(await intake.submit(entry(4))).toMatchObject({ kind: "queued" }); // room again once they were answered
    } finally {
      await queue.close();
      conn.disconnect();
      admin.disconnect();
    }
  });
});
