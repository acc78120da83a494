import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { parseEnv } from "@quanta/config";
import { parsePayerKey, payerRef } from "@quanta/contract";
import { findAttempt } from "@quanta/db";
import { createTestWorld, until, type TestWorld } from "@quanta/test-kit";
import { CallbackClient } from "@quanta/loadtest";
import { createRedis, keysMatching, type QuantaRedis } from "@quanta/queue";
import { createLogger } from "@quanta/telemetry";
import { startIngress, type RunningIngress } from "@quanta/ingress";
import { startWorker, type RunningWorker } from "@quanta/worker";

/**
 * Issue #19 item 5: payer ids are personal data. The ingress replaces them by a keyed HMAC
 * (QUANTA_PAYER_KEY) before anything is stored or queued: no Redis key or value and no row holds
 * the id itself, one payer stays one pseudonym (I2 holds across the ingress's and the worker's
 * decisions), `quanta payer-ref` prints the stored form, and a real unique violation on the
 * one-grant-per-payer index is logged without the values Postgres quotes.
 */
const MAIN = fileURLToPath(new URL("../../../packages/cli/dist/main.js", import.meta.url));
const RAW = "RAW-PAYER-4711";

let world: TestWorld;
let ingress: RunningIngress;
let worker: RunningWorker | undefined;
let client: CallbackClient;
let redis: QuantaRedis;

const body = (txnId: string, merchantId: string, payerId = RAW) =>
  JSON.stringify({ txnId, payerId, merchantId, amountFen: 250_000, paidAt: "2020-09-13T10:00:01+08:00" });

/** Every key of the test's prefix and every value it holds, as text. */
async function redisText(): Promise<string> {
  const parts: string[] = [];
  for (const key of await keysMatching(redis, `${world.prefix}*`)) {
    parts.push(key);
    const type = await redis.type(key);
    if (type === "string") parts.push(String(await redis.get(key)));
    else if (type === "hash") parts.push(JSON.stringify(await redis.hgetall(key)));
    else if (type === "list") parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
    else if (type === "zset") parts.push(JSON.stringify(await redis.zrange(key, 0, -1)));
    else if (type === "set") parts.push(JSON.stringify(await redis.smembers(key)));
    else if (type === "stream") parts.push(JSON.stringify(await redis.xrange(key, "-", "+")));
  }
  return parts.join("\n");
}

beforeAll(async () => {
  world = await createTestWorld("payer_pseudonym", { partitions: 1 });
  ingress = await startIngress(parseEnv({ ...world.env, QUANTA_DECISION_WAIT_MS: "200" }));
  client = new CallbackClient(`http://127.0.0.1:${ingress.port}`, world.acquirerId, world.secret, 4);
  redis = createRedis(world.redisUrl, "payer-pseudonym-test");
}, 60_000);

afterAll(async () => {
  await client?.close();
  await worker?.close();
  await ingress?.close();
  redis?.disconnect();
  await world?.cleanup();
});

describe("payer ids", () => {
  const key = () => parsePayerKey(world.env.QUANTA_PAYER_KEY);

  it("are pseudonymised before they are queued or stored: Redis and Postgres hold only the keyed pseudonym", async () => {
    const ref = payerRef(key(), RAW);
    // Needs stock and no worker runs yet: the attempt waits in its queue job.
    expect((await client.postPayment(body("ps-queued", "M-0001"))).status).toBe(202);
    const queued = await redisText();
    expect(queued).toContain(ref);
    expect(queued).not.toContain(RAW);
    // Needs no stock: stored by the ingress itself.
    expect(await client.postPayment(body("ps-immediate", "M-NOT-LISTED", "RAW-OTHER-1"))).toMatchObject({
      status: 200,
    });

    worker = await startWorker(parseEnv(world.env));
    await until("ps-queued stored", 10_000, () => findAttempt(world.db.kysely, world.acquirerId, "ps-queued"));
    expect((await findAttempt(world.db.kysely, world.acquirerId, "ps-queued"))?.payer_id).toBe(ref);
    expect((await findAttempt(world.db.kysely, world.acquirerId, "ps-immediate"))?.payer_id).toBe(
      payerRef(key(), "RAW-OTHER-1"),
    );
    const raw = await sql<{ n: number }>`select count(*)::int as n from attempts where payer_id like 'RAW-%'`.execute(
      world.db.kysely,
    );
    expect(raw.rows[0]!.n).toBe(0);
    // One payer, one pseudonym: the second payment of the same payer in the activity is refused.
    expect((await client.postPayment(body("ps-second", "M-0002"))).body).toMatchObject({
      status: "rejected",
      reason: "already_redeemed",
    });
  });

  it("quanta payer-ref prints the stored form, for support look-ups", () => {
    const printed = execFileSync(process.execPath, [MAIN, "payer-ref", RAW], {
      env: world.env,
      encoding: "utf8",
    }).trim();
    expect(printed).toBe(payerRef(key(), RAW));
    expect(() =>
      execFileSync(process.execPath, [MAIN, "payer-ref", RAW], {
        env: { ...world.env, QUANTA_PAYER_KEY: "" },
        stdio: "pipe",
      }),
    ).toThrow(/QUANTA_PAYER_KEY is required/);
  });

  it("a real unique violation of the one-grant-per-payer index is logged without the values Postgres quotes", async () => {
    const held = (await findAttempt(world.db.kysely, world.acquirerId, "ps-queued"))!;
    expect(held.status).toBe("granted");
    const error = await sql`
      insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, partition,
                            campaign_id, activity_id, tier_id, discount_fen, status, decided_by)
      values (${world.acquirerId}, 'ps-dup', 'h', ${held.payer_id}, 'M-0001', 250000, now(), now(), 0,
              ${held.campaign_id}, ${held.activity_id}, ${held.tier_id}, ${held.discount_fen}, 'granted', 'worker')`
      .execute(world.db.kysely)
      .then(
        () => undefined,
        (e: unknown) => e as { code?: string; detail?: string },
      );
    expect(error?.code).toBe("23505");
    expect(error?.detail).toContain(held.payer_id); // what Postgres says, before the logger
    const lines: string[] = [];
    createLogger("test", "info", { write: (line: string) => void lines.push(line) }).error(
      { err: error },
      "insert failed",
    );
    expect(lines.join("")).not.toContain(held.payer_id);
    expect(lines.join("")).toContain("=([redacted])");
  });
});
