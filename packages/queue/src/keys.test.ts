import { describe, expect, it } from "vitest";
import { REGISTRY_SHARDS, keys, partitionTag, queueName, queuePrefix, registryShard } from "./keys.js";
import { ATTEMPTS_PER_JOB_MAX, batchJobSchema } from "./job.js";
import { slotOf } from "./redis.js";

/**
 * The names and the job payload every ingress and worker must agree on, without Redis: a
 * partition's keys share one Cluster slot, a txn's registration does not depend on its payer, and
 * a queue job that is not what an ingress writes is refused field by field.
 */
describe("keys", () => {
  it("keeps a partition's backlog, lease and queue in one slot, and gives each partition its own tag", () => {
    const tags = new Set<string>();
    for (let p = 0; p < 32; p++) {
      const slots = new Set(
        [
          keys.backlog("q", p),
          keys.lease("q", p),
          keys.bull("q", p, "wait"),
          `${queuePrefix("q", p)}:${queueName(p)}:id`,
        ].map(slotOf),
      );
      expect(slots.size).toBe(1);
      tags.add(partitionTag(p));
    }
    expect(tags.size).toBe(32);
  });

  it("registers a txn under its acquirer and id alone, on one of the registry's shards", () => {
    const shard = registryShard("acq", "t-1");
    expect(shard).toBeGreaterThanOrEqual(0);
    expect(shard).toBeLessThan(REGISTRY_SHARDS);
    expect(registryShard("acq", "t-1")).toBe(shard);
    expect(keys.txn("q", "acq", "t-1")).toBe(`q:{r${String(shard).padStart(2, "0")}}:txn:acq:t-1`);
    expect(keys.txn("q", "acq", "t-1")).not.toBe(keys.txn("q", "acq-other", "t-1"));
  });
});

describe("batchJobSchema", () => {
  const attempt = {
    acquirerId: "acq",
    bodyHash: "h",
    payment: { txnId: "t-1", payerId: "p-1", merchantId: "M-0001", amountFen: 250_000, paidAtMs: 1 },
    receivedAtMs: 2,
    partition: 3,
    request: { campaignId: "c", activityId: "A2", tierIds: ["A2-400"] },
  };

  it("parses a job as an ingress writes it", () => {
    expect(batchJobSchema.parse({ replyTo: "ingress-1", room: 1, attempts: [attempt] })).toEqual({
      replyTo: "ingress-1",
      room: 1,
      attempts: [attempt],
    });
  });

  it("refuses an empty or oversized batch and names the field of a bad attempt", () => {
    expect(batchJobSchema.safeParse({ replyTo: "", attempts: [] }).success).toBe(false);
    expect(
      batchJobSchema.safeParse({ replyTo: "", attempts: Array(ATTEMPTS_PER_JOB_MAX + 1).fill(attempt) }).success,
    ).toBe(false);
    const bad = batchJobSchema.safeParse({
      replyTo: "",
      attempts: [{ ...attempt, partition: 256, payment: { ...attempt.payment, payerId: "a payer" } }],
    });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join("."))).toEqual(
      expect.arrayContaining(["attempts.0.payment.payerId", "attempts.0.partition"]),
    );
  });
});
