import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEnv } from "@quanta/config";
import { findAttempts } from "@quanta/db";
import { createTestWorld, until, type TestWorld } from "@quanta/test-kit";
import { CallbackClient, type Answer } from "@quanta/loadtest";
import { startIngress, type RunningIngress } from "@quanta/ingress";
import { startWorker, type RunningWorker } from "@quanta/worker";
import {
  createRedis,
  keys,
  keysMatching,
  queueName,
  queuePrefix,
  readBacklog,
  waitKey,
  type QuantaRedis,
} from "@quanta/queue";
import { parsePaymentBody, paymentHash } from "@quanta/contract";
import { registry } from "@quanta/telemetry";

/**
 * The one path: stateless ingresses queue what needs stock, workers decide it. Two ingresses
 * (callbacks spread over them as a load balancer would, a resend to the other one) and two
 * workers: every attempt that needs stock took a queue job and was decided by a worker; what
 * needs no stock was stored by the ingress; the backlog and every txn registration are gone once
 * decided (Redis holds what is in flight, not the campaign's history); a repeat gets the stored
 * decision, another body 409, at either ingress. And the I4 defect of issue #16: a txn decided
 * without the queue, then another body that needs stock (it takes the queue and is answered
 * 409), then the original body again: 200 with the stored decision, also after every process
 * restarted.
 */
let world: TestWorld;
let ingresses: RunningIngress[] = [];
let workers: RunningWorker[] = [];
let clients: CallbackClient[] = [];
let redis: QuantaRedis;

const body = (txnId: string, payerId: string, amountFen = 250_000) =>
  JSON.stringify({ txnId, payerId, merchantId: "M-0001", amountFen, paidAt: "2020-09-13T10:00:01+08:00" });

async function start(): Promise<void> {
  const env = parseEnv(world.env);
  workers = [await startWorker(env), await startWorker(env)];
  ingresses = [await startIngress(env), await startIngress(env)];
  clients = ingresses.map((i) => new CallbackClient(`http://127.0.0.1:${i.port}`, world.acquirerId, world.secret, 32));
  await until("the two workers share the partitions", 20_000, () =>
    workers.every((w) => w.ownership.owned().length === 2),
  );
}

async function stop(): Promise<void> {
  for (const c of clients) await c.close();
  for (const i of ingresses) await i.close();
  for (const w of workers) await w.close();
  clients = [];
  ingresses = [];
  workers = [];
}

const registrations = () => keysMatching(redis, keys.txnPattern(world.prefix));
/** A counter of the process's registry (the workers run in this process). */
const metricValue = async (name: string) =>
  Number(/\S+ (\d+)$/m.exec(await registry.getSingleMetricAsString(name))?.[1] ?? 0);
const jobsAdded = async () => {
  let n = 0;
  for (let p = 0; p < 4; p++) n += Number((await redis.get(`${queuePrefix(world.prefix, p)}:${queueName(p)}:id`)) ?? 0);
  return n;
};

beforeAll(async () => {
  world = await createTestWorld("queue_path", { env: { QUANTA_LEASE_MS: "2000" } });
  redis = createRedis(world.env.REDIS_URL!, "queue-path-test");
  await start();
});

afterAll(async () => {
  await stop();
  redis?.disconnect();
  await world?.cleanup();
});

describe("stateless ingresses, deciding workers", () => {
  it("queues what needs stock for the workers, stores the rest itself, and leaves nothing in Redis once decided", async () => {
    const answers = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        clients[i % 2]!.postPayment(body(`q-${i}`, `payer-${i}`, i % 10 === 0 ? 1_000 : 250_000)),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(answers.filter((a) => (a.body as { status: string }).status === "granted")).toHaveLength(360);
    expect(answers.filter((a) => (a.body as { reason?: string }).reason === "below_threshold")).toHaveLength(40);

    const rows = await findAttempts(
      world.db.kysely,
      answers.map((_, i) => ({ acquirerId: world.acquirerId, txnId: `q-${i}` })),
    );
    expect(rows.filter((r) => r.decided_by === "worker")).toHaveLength(360);
    expect(rows.filter((r) => r.decided_by === "ingress")).toHaveLength(40);
    // Both workers decided: each owned two partitions throughout, and each one's partitions have
    // rows decided by a worker, queued in jobs.
    const owned = workers.map((w) => w.ownership.owned());
    expect(owned.map((o) => o.length)).toEqual([2, 2]);
    for (const partitions of owned)
      expect(rows.some((r) => r.decided_by === "worker" && partitions.includes(r.partition))).toBe(true);
    expect(await jobsAdded()).toBeGreaterThanOrEqual(4);

    // Every job gave its room back on completion (not the idle-time reset: it corrected nothing),
    // and every registration is gone, the ingress's own decisions' and the workers'.
    await until("backlog room given back", 5_000, async () => (await readBacklog(redis, world.prefix, 4)) === 0);
    expect(await metricValue("quanta_backlog_resets_total")).toBe(0);
    await until("registrations forgotten", 5_000, async () => (await registrations()).length === 0);
  });

  it("answers a repeat with the stored decision and another body 409, at either ingress, and forgets again", async () => {
    const first = await clients[0]!.postPayment(body("rep-1", "payer-rep"));
    expect(first).toMatchObject({ status: 200, body: { txnId: "rep-1", status: "granted" } });
    for (const client of clients) {
      expect(await client.postPayment(body("rep-1", "payer-rep"))).toMatchObject({ status: 200, body: first.body });
      expect(await client.postPayment(body("rep-1", "payer-rep", 260_000))).toMatchObject({
        status: 409,
        body: { error: { code: "txn_conflict" } },
      });
      expect(await client.getAttempt("rep-1")).toMatchObject({ status: 200, body: first.body });
    }
    expect(await findAttempts(world.db.kysely, [{ acquirerId: world.acquirerId, txnId: "rep-1" }])).toHaveLength(1);
    await until("registrations forgotten", 5_000, async () => (await registrations()).length === 0);
  });

  it("a txn decided without the queue, then another body that takes the queue (409), then the original again: its decision", async () => {
    // Decided by the ingress itself (below every threshold): stored, its registration forgotten.
    const original = body("i4-1", "payer-i4", 1_000);
    const decided = await clients[0]!.postPayment(original);
    expect(decided).toMatchObject({
      status: 200,
      body: { txnId: "i4-1", status: "rejected", reason: "below_threshold" },
    });
    await until("registration forgotten", 5_000, async () => (await registrations()).length === 0);

    // Another body for the same txnId that needs stock: admitted as a first sighting, queued,
    // answered 409 by the worker from the stored row.
    const jobsBefore = await jobsAdded();
    const conflicting = body("i4-1", "payer-i4", 300_000);
    const answers: Answer[] = [await clients[1]!.postPayment(conflicting)];
    expect(answers[0]).toMatchObject({ status: 409, body: { error: { code: "txn_conflict" } } });
    expect(await jobsAdded()).toBe(jobsBefore + 1); // it did take the queue

    // The original body again, at both ingresses, and GET: the stored decision every time.
    for (const client of clients) answers.push(await client.postPayment(original), await client.getAttempt("i4-1"));
    for (const a of answers.slice(1)) expect(a).toMatchObject({ status: 200, body: decided.body });
    // And the conflicting body stays 409.
    expect(await clients[0]!.postPayment(conflicting)).toMatchObject({ status: 409 });
    await until("registrations forgotten", 5_000, async () => (await registrations()).length === 0);

    // The same after every process restarted.
    await stop();
    await start();
    expect(await clients[1]!.postPayment(original)).toMatchObject({ status: 200, body: decided.body });
    expect(await clients[0]!.postPayment(conflicting)).toMatchObject({
      status: 409,
      body: { error: { code: "txn_conflict" } },
    });
    expect(await clients[1]!.postPayment(original)).toMatchObject({ status: 200, body: decided.body });
    expect(await clients[0]!.getAttempt("i4-1")).toMatchObject({ status: 200, body: decided.body });
    expect(await findAttempts(world.db.kysely, [{ acquirerId: world.acquirerId, txnId: "i4-1" }])).toEqual([
      expect.objectContaining({ decided_by: "ingress", reason: "below_threshold", amount_fen: 1_000 }),
    ]);
  });

  it("answers a conflicting body 409 while the first is still queued, and the first its own decision once a worker runs", async () => {
    await stop();
    const env = parseEnv({ ...world.env, QUANTA_DECISION_WAIT_MS: "200" });
    ingresses = [await startIngress(env)];
    clients = [new CallbackClient(`http://127.0.0.1:${ingresses[0]!.port}`, world.acquirerId, world.secret, 4)];
    const first = await clients[0]!.postPayment(body("pq-1", "payer-pq"));
    expect(first).toMatchObject({ status: 202, body: { txnId: "pq-1", status: "pending" } });
    expect(await clients[0]!.postPayment(body("pq-1", "payer-pq", 300_000))).toMatchObject({ status: 409 });
    workers = [await startWorker(env)];
    await until("decided", 20_000, async () => (await clients[0]!.getAttempt("pq-1")).status === 200);
    expect(await clients[0]!.getAttempt("pq-1")).toMatchObject({
      status: 200,
      body: { txnId: "pq-1", status: "granted" },
    });
    expect(await clients[0]!.postPayment(body("pq-1", "payer-pq"))).toMatchObject({
      status: 200,
      body: { txnId: "pq-1", status: "granted" },
    });
    expect(await clients[0]!.postPayment(body("pq-1", "payer-pq", 300_000))).toMatchObject({ status: 409 });
  });

  it("a decision published late for one body never answers a callback waiting with another body of the txn", async () => {
    // X is decided and stored (its registration deleted); then no worker runs, and Y, another body
    // of the txn, is queued and waits. A copy of X's job decided late publishes X's decision: it
    // must not answer Y (issue #16 review). Y's wait ends, Postgres has X's row: 409.
    await stop();
    await start();
    const x = body("late-1", "payer-late");
    const decided = await clients[0]!.postPayment(x);
    expect(decided).toMatchObject({ status: 200, body: { txnId: "late-1", status: "granted" } });
    for (const w of workers) await w.close();
    workers = [];
    const xParsed = parsePaymentBody(Buffer.from(x));
    if (!xParsed.ok) throw new Error("unparsable");
    const y = clients[0]!.postPayment(body("late-1", "payer-late", 300_000));
    await until("Y is queued", 20_000, async () => (await registrations()).length === 1);
    const channel = keys.decisions(world.prefix, ingresses[0]!.ingressId);
    expect(
      await redis.spublish(
        channel,
        JSON.stringify({
          answers: [[waitKey(world.acquirerId, "late-1", paymentHash(xParsed.payment)), decided.body]],
        }),
      ),
    ).toBe(1);
    expect(await y).toMatchObject({ status: 409, body: { error: { code: "txn_conflict" } } });
  });

  it("another body arriving while the first (no stock needed) is still being stored is 409, not queued and granted", async () => {
    await stop();
    await start();
    // A2-20 marked sold out: a 150 CNY payment qualifies for it alone, so the ingress answers it
    // sold_out itself; its statement takes KEY SHARE on the tier row, which a second session holds.
    await world.db.pool.query("update tiers set sold_out_at = clock_timestamp() where id = 'A2-20'");
    await until("the ingress knows A2-20 is empty", 20_000, () =>
      ingresses[0]!.soldOut.allEmpty("qianan-2020-b2", ["A2-20"]),
    );
    const blocker = await world.db.pool.connect();
    try {
      await blocker.query("begin");
      await blocker.query("select 1 from tiers where id = 'A2-20' for update");
      const first = clients[0]!.postPayment(body("mid-1", "payer-mid", 15_000));
      await until("the first body's statement waits on the tier row", 20_000, async () => {
        const waiting = await world.db.pool.query(
          "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database() and application_name = 'quanta-ingress'",
        );
        return waiting.rows[0].n > 0;
      });
      // Another body of the same txn, one that needs stock: refused at once, never queued.
      const jobsBefore = await jobsAdded();
      expect(await clients[1]!.postPayment(body("mid-1", "payer-mid", 250_000))).toMatchObject({
        status: 409,
        body: { error: { code: "txn_conflict" } },
      });
      expect(await jobsAdded()).toBe(jobsBefore);
      await blocker.query("commit");
      expect(await first).toMatchObject({
        status: 200,
        body: { txnId: "mid-1", status: "rejected", reason: "sold_out" },
      });
    } finally {
      blocker.release();
      await world.db.pool.query("update tiers set sold_out_at = null where id = 'A2-20'");
    }
  });
});
