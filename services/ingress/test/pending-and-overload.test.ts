import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEnv } from "@quanta/config";
import { findAttempt } from "@quanta/db";
import { createTestWorld, until, type TestWorld } from "@quanta/test-kit";
import { CallbackClient } from "@quanta/loadtest";
import { createRedis, readBacklog, type QuantaRedis } from "@quanta/queue";
import { startIngress, type RunningIngress } from "@quanta/ingress";
import { startWorker } from "@quanta/worker";

/**
 * 202 and 503: with no worker running, an accepted attempt is durable and
 * answered 202 with a location; past the backlog bound the ingress answers
 * 503 with retry-after and accepts nothing. A worker started later decides
 * what was accepted, exactly once. A txn whose decision is stored is answered from Postgres even
 * while the backlog is full.
 */
let world: TestWorld;
let ingress: RunningIngress;
let client: CallbackClient;
let redis: QuantaRedis;

const body = (txnId: string, payerId: string) =>
  JSON.stringify({ txnId, payerId, merchantId: "M-0001", amountFen: 250_000, paidAt: "2020-09-13T10:00:01+08:00" });

beforeAll(async () => {
  // One partition: the backlog bound holds per partition (QUANTA_BACKLOG_MAX / partitions), and
  // this test counts the three slots of one.
  world = await createTestWorld("pending", {
    partitions: 1,
    env: { QUANTA_BACKLOG_MAX: "3", QUANTA_DECISION_WAIT_MS: "300", QUANTA_INTAKE_FLUSH_MS: "0" },
  });
  ingress = await startIngress(parseEnv(world.env));
  client = new CallbackClient(`http://127.0.0.1:${ingress.port}`, world.acquirerId, world.secret, 4);
  redis = createRedis(world.redisUrl, "pending-test");
});

afterAll(async () => {
  await client?.close();
  redis?.disconnect();
  await ingress?.close();
  await world?.cleanup();
});

describe("without a worker", () => {
  it("answers 202 with a location, then 503 past the backlog bound, then decides what it accepted once a worker runs", async () => {
    const first = await client.postPayment(body("pend-1", "pa"));
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ txnId: "pend-1", status: "pending" });
    expect(first.headers.location).toBe("/v1/attempts/pend-1");
    expect(await client.getAttempt("pend-1")).toMatchObject({
      status: 202,
      body: { txnId: "pend-1", status: "pending" },
    });
    // A repeat of a pending txn is queued again (it covers an ingress killed between registering
    // and queueing), so it takes room in the backlog: three slots hold pend-1 twice and pend-2.
    expect((await client.postPayment(body("pend-1", "pa"))).status).toBe(202);
    expect((await client.postPayment(body("pend-2", "pb"))).status).toBe(202);

    const refused = await client.postPayment(body("over-1", "pc"));
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: "overloaded" } });
    expect(refused.headers["retry-after"]).toBe("1");
    expect(await client.getAttempt("over-1")).toMatchObject({ status: 404 });

    const worker = await startWorker(parseEnv(world.env));
    try {
      const answer = await until("pend-1 decided", 30_000, async () => {
        const a = await client.getAttempt("pend-1");
        return a.status === 200 && a;
      });
      expect(answer).toMatchObject({ status: 200, body: { txnId: "pend-1", status: "granted", tierId: "A2-400" } });
      expect((await client.postPayment(body("pend-1", "pa"))).body).toEqual(answer.body);
      // The refused attempt was not accepted: sent again once the decided jobs gave their room
      // back (after their decisions were stored, so a GET can see them first), it is new and decided.
      await until("backlog room given back", 30_000, async () => (await readBacklog(redis, world.prefix, 1)) === 0);
      // Accepted now (200, or 202 when its decision outlasts the 300 ms wait), and granted.
      expect([200, 202]).toContain((await client.postPayment(body("over-1", "pc"))).status);
      const retried = await until("over-1 decided", 30_000, async () => {
        const a = await client.getAttempt("over-1");
        return a.status === 200 && a;
      });
      expect(retried).toMatchObject({ status: 200, body: { status: "granted" } });
      expect(await findAttempt(world.db.kysely, world.acquirerId, "pend-2")).toMatchObject({ status: "granted" });
    } finally {
      await worker.close();
    }
  });

  it("answers a decided txn's resend with its decision, and another body 409, while the backlog is full", async () => {
    // pend-1's decision is stored (above); no worker runs now. Three new attempts fill the backlog.
    await until("backlog room given back", 30_000, async () => (await readBacklog(redis, world.prefix, 1)) === 0);
    const decided = await client.getAttempt("pend-1");
    expect(decided).toMatchObject({ status: 200, body: { txnId: "pend-1", status: "granted" } });
    for (const txnId of ["full-1", "full-2", "full-3"])
      expect((await client.postPayment(body(txnId, `payer-${txnId}`))).status).toBe(202);
    expect(await readBacklog(redis, world.prefix, 1)).toBe(3);

    // A new attempt is refused: nothing accepted.
    expect(await client.postPayment(body("full-4", "payer-full-4"))).toMatchObject({
      status: 503,
      body: { error: { code: "overloaded" } },
    });
    // The decided txn answers from Postgres whatever the backlog says: its decision, or 409.
    expect(await client.postPayment(body("pend-1", "pa"))).toMatchObject({ status: 200, body: decided.body });
    expect(await client.postPayment(body("pend-1", "other-payer"))).toMatchObject({
      status: 409,
      body: { error: { code: "txn_conflict" } },
    });
    // Neither took room nor left a registration behind for another body to trip on.
    expect(await readBacklog(redis, world.prefix, 1)).toBe(3);
    expect(await client.getAttempt("full-4")).toMatchObject({ status: 404 });
  });
});
