import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { parseEnv } from "@quanta/config";
import { findAttempts } from "@quanta/db";
import { createTestWorld, type TestWorld } from "@quanta/cli";
import { CallbackClient } from "@quanta/loadtest";
import { startIngress, type RunningIngress } from "@quanta/ingress";
import { startWorker, type RunningWorker } from "@quanta/worker";
import { keys, queueName } from "@quanta/queue";

/**
 * The deployed shape (QUANTA_INGRESS_DECIDES=true): the ingress owns every
 * partition and decides in its own batch transactions. What it must keep:
 * no queue job and no backlog room for what it decides, no txn registration
 * left in Redis once a decision is stored (Redis holds what is in flight,
 * not the campaign's history), the same answers as through the queue (a
 * repeat gets the stored decision, another body 409), and a standing-by
 * worker that takes over the partitions when the ingress goes and hands
 * them back when one comes.
 */
let world: TestWorld;
let ingress: RunningIngress | undefined;
let worker: RunningWorker | undefined;
let redis: Redis;

const body = (txnId: string, payerId: string, amountFen = 250_000) =>
  JSON.stringify({ txnId, payerId, merchantId: "M-0001", amountFen, paidAt: "2020-09-13T10:00:01+08:00" });

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function registryKeys(): Promise<string[]> {
  return redis.keys(`${world.prefix}:txn:*`);
}

beforeAll(async () => {
  world = await createTestWorld("owner", { env: { QUANTA_LEASE_MS: "2000" } });
  redis = new Redis(world.env.REDIS_URL!);
  worker = await startWorker(parseEnv(world.env));
  ingress = await startIngress(parseEnv(world.env));
});

afterAll(async () => {
  await ingress?.close();
  await worker?.close();
  redis?.disconnect();
  await world?.cleanup();
});

describe("an ingress that owns its partitions", () => {
  it("takes every partition from the standing-by worker and decides 400 callbacks with no queue job and no registration left", async () => {
    await until("the ingress owns every partition", () => ingress!.ownership!.owned().length === 4);
    await until("the worker stands by", () => worker!.ownership.owned().length === 0);
    const client = new CallbackClient(`http://127.0.0.1:${ingress!.port}`, world.acquirerId, world.secret, 32);
    try {
      const answers = await Promise.all(Array.from({ length: 400 }, (_, i) => client.postPayment(body(`own-${i}`, `payer-${i}`, i % 10 === 0 ? 1_000 : 250_000))));
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      expect(answers.filter((a) => (a.body as { status: string }).status === "granted")).toHaveLength(360);
      expect(answers.filter((a) => (a.body as { reason?: string }).reason === "below_threshold")).toHaveLength(40);

      // Nothing went through the queue, nothing holds backlog room, nothing stays registered.
      for (let p = 0; p < 4; p++) expect(await redis.exists(`${world.prefix}:${queueName(p)}:id`)).toBe(0);
      expect(Number((await redis.get(keys.backlog(world.prefix))) ?? 0)).toBe(0);
      await until("registrations forgotten", async () => (await registryKeys()).length === 0, 5_000);

      // A repeat gets the stored decision; another body for a decided txn is refused from the stored row.
      const again = await client.postPayment(body("own-1", "payer-1"));
      expect(again).toMatchObject({ status: 200, body: answers[1]!.body });
      const changed = await client.postPayment(body("own-1", "payer-1", 260_000));
      expect(changed).toMatchObject({ status: 409, body: { error: { code: "txn_conflict" } } });
      expect(await findAttempts(world.db.kysely, [{ acquirerId: world.acquirerId, txnId: "own-1" }])).toHaveLength(1);
      await until("registrations forgotten", async () => (await registryKeys()).length === 0, 5_000);
    } finally {
      await client.close();
    }
  });

  it("when the ingress goes, the worker takes the partitions; a new ingress takes them back and answers from the same rows", async () => {
    await ingress!.close();
    ingress = undefined;
    await until("the worker owns every partition", () => worker!.ownership.owned().length === 4);
    ingress = await startIngress(parseEnv(world.env));
    await until("the new ingress owns every partition", () => ingress!.ownership!.owned().length === 4);
    expect(worker!.ownership.owned()).toEqual([]);
    const client = new CallbackClient(`http://127.0.0.1:${ingress.port}`, world.acquirerId, world.secret, 4);
    try {
      const repeat = await client.postPayment(body("own-2", "payer-2"));
      expect(repeat).toMatchObject({ status: 200, body: { txnId: "own-2", status: "granted", tierId: "A2-400" } });
      const fresh = await client.postPayment(body("own-new", "payer-new"));
      expect(fresh).toMatchObject({ status: 200, body: { txnId: "own-new", status: "granted" } });
    } finally {
      await client.close();
    }
  });
});
