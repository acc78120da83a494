import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killService, startService, stopService, type ServiceProcess } from "@quanta/cli";
import {
  createTestWorld,
  type TestWorld,
  freePort,
  queuesSettled,
  rushDuring,
  sleep,
  verdict,
  expectNoDeadlock,
} from "@quanta/test-kit";
import { findAttempts, rowDecision, waitUntilDecided } from "@quanta/db";
import { decisionBody } from "@quanta/contract";
import { CallbackClient, PaymentGenerator, loadScenario, type Answer } from "@quanta/loadtest";
import { Queue, UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import { payerInPartition } from "@quanta/domain";
import { jobOptions, queueName, queuePrefix } from "@quanta/queue";

/**
 * Jobs BullMQ gives up on (here maxStalledCount is 0, so one stall fails a job) must still end in
 * decisions; an ingress killed right after acknowledging, while the acquirer's client retries
 * every callback that got no answer, must give every retry the answer of the first decision; an
 * ingress frozen beside a serving one loses nothing it queued and answers again when thawed.
 */
let world: TestWorld;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  world = await createTestWorld("faults_stalled", {
    env: { QUANTA_LEASE_MS: "3000", QUANTA_WORKER_MAX_STALLED_COUNT: "0" },
  });
}, 120_000);

afterAll(async () => {
  await Promise.all(services.map((s) => stopService(s, 3_000)));
  await world?.cleanup();
});

const alive = (kind: string) =>
  services.filter((s) => s.kind === kind && s.child.exitCode === null && s.child.signalCode === null);

describe("jobs BullMQ gives up on, and an ingress killed under a retrying client", () => {
  it(
    "a job BullMQ failed for good is put back by the partition's owner and its attempts decided",
    { timeout: 120_000 },
    async () => {
      // Before any quanta worker runs: a plain BullMQ worker takes the job and fails it for good
      // (UnrecoverableError: no retries left), as BullMQ does to a job stalled past its limit.
      const partitions = Number(world.env.QUANTA_PARTITIONS);
      const attempts = Array.from({ length: 3 }, (_, i) => ({
        acquirerId: world.acquirerId,
        bodyHash: `h-fj-${i}`,
        payment: {
          txnId: `fj-${i}`,
          payerId: payerInPartition(`failed-job-payer-${i}-`, 0, partitions),
          merchantId: "M-0009",
          amountFen: 250_000,
          paidAtMs: Date.parse("2020-09-13T00:00:09+08:00"),
        },
        receivedAtMs: Date.now(),
        partition: 0,
        request: {
          campaignId: "qianan-2020-b2",
          activityId: "A2",
          tierIds: ["A2-400", "A2-200", "A2-100", "A2-50", "A2-20"],
        },
      }));
      const connection = new Redis(world.env.REDIS_URL!, { maxRetriesPerRequest: null });
      const queue = new Queue(queueName(0), {
        connection,
        prefix: queuePrefix(world.prefix, 0),
        skipVersionCheck: true,
      });
      const failer = new Worker(
        queueName(0),
        async () => {
          throw new UnrecoverableError("job stalled more than allowable limit (simulated)");
        },
        { connection, prefix: queuePrefix(world.prefix, 0), skipVersionCheck: true, autorun: true },
      );
      try {
        await queue.add("batch", { replyTo: "", attempts }, jobOptions(0));
        for (let i = 0; (await queue.getFailedCount()) === 0; i++) {
          if (i > 100) throw new Error("the job was not failed");
          await sleep(100);
        }
      } finally {
        await failer.close();
        await queue.close();
        connection.disconnect();
      }
      const keys = attempts.map((a) => ({ acquirerId: world.acquirerId, txnId: a.payment.txnId }));
      expect(await waitUntilDecided(world.db.kysely, keys, { timeoutMs: 1_000, pollMs: 200 })).toHaveLength(3); // nothing decided yet
      services.push(await startService("worker", world.env));
      expect(await waitUntilDecided(world.db.kysely, keys, { timeoutMs: 30_000, pollMs: 250 })).toEqual([]);
      expect(await queuesSettled(world.env.REDIS_URL!, world.prefix, partitions)).toEqual({});
      const text = await (await fetch(`http://127.0.0.1:${alive("worker")[0]!.port}/metrics`)).text();
      expect(Number(/quanta_worker_requeued_jobs_total (\d+)/.exec(text)?.[1])).toBe(1);
      console.log("fault failed job: put back by the partition's owner, its 3 attempts decided");
    },
  );

  // Whether a job is active at the instant of a kill is luck: this scenario proves the rush survives
  // with maxStalledCount 0; the test above proves deterministically that a failed job is put back.
  it(
    "every worker killed twice with maxStalledCount 0: every acknowledged attempt decided once",
    { timeout: 300_000 },
    async () => {
      const port = await freePort();
      services.push(await startService("ingress", { ...world.env, PORT: String(port) }));
      services.push(await startService("worker", world.env));
      const run = await rushDuring(world, port, { rate: 200, seconds: 14, runId: "st" }, async () => {
        for (let round = 0; round < 2; round++) {
          await sleep(3_000);
          await Promise.all(alive("worker").map((w) => killService(w)));
          await sleep(500);
          services.push(await startService("worker", world.env), await startService("worker", world.env));
        }
      });
      await verdict(world, "every worker killed twice with maxStalledCount 0 (failed jobs put back)", run);
      let requeued = 0;
      for (const w of alive("worker")) {
        const text = await (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text();
        requeued += Number(/quanta_worker_requeued_jobs_total (\d+)/.exec(text)?.[1] ?? 0);
      }
      console.log(`fault stalled jobs: ${requeued} failed jobs put back by the surviving owners`);
    },
  );

  it(
    "an ingress killed right after acknowledging: every retried callback gets the first decision",
    { timeout: 300_000 },
    async () => {
      for (const s of alive("ingress")) await stopService(s, 3_000);
      const env = { ...world.env, PORT: String(await freePort()) };
      const port = Number(env.PORT);
      services.push(await startService("ingress", env));
      const generator = new PaymentGenerator(
        { ...loadScenario(), resendShare: 0, conflictShare: 0, forgedShare: 0 },
        99,
        "ir",
      );
      const bodies = Array.from({ length: 2_400 }, () => JSON.stringify(generator.next(1).body));
      const client = new CallbackClient(`http://127.0.0.1:${port}`, world.acquirerId, world.secret, 64);
      const answers = new Map<string, Answer[]>();
      let retries = 0;
      const send = async (body: string): Promise<void> => {
        const txnId = (JSON.parse(body) as { txnId: string }).txnId;
        for (let attempt = 0; attempt < 40; attempt++) {
          // A refused or reset connection rejects: to the acquirer it is "no answer", like status 0.
          const a: Answer = await client
            .postPayment(body)
            .catch(() => ({ status: 0, body: null, headers: {} }) as unknown as Answer);
          answers.set(txnId, [...(answers.get(txnId) ?? []), a]);
          if (a.status === 200 || a.status === 202) return;
          retries++;
          await sleep(250); // the acquirer's retry: same txnId, same body
        }
      };
      const chaos = (async () => {
        await sleep(3_000);
        await killService(alive("ingress")[0]!);
        await sleep(700);
        services.push(await startService("ingress", env));
      })();
      const sending = (async () => {
        const inFlight: Promise<void>[] = [];
        for (let i = 0; i < bodies.length; i += 40) {
          inFlight.push(...bodies.slice(i, i + 40).map(send));
          await sleep(200); // 200 callbacks a second, open model
        }
        await Promise.all(inFlight);
      })();
      await Promise.all([chaos, sending]);
      await client.close();

      const acked = [...answers]
        .filter(([, as]) => as.some((a) => a.status === 200 || a.status === 202))
        .map(([txnId]) => ({ acquirerId: world.acquirerId, txnId }));
      expect(acked.length).toBe(bodies.length); // the client retried until every callback was acknowledged
      expect(retries).toBeGreaterThan(0); // the kill was felt
      expect(await waitUntilDecided(world.db.kysely, acked, { timeoutMs: 120_000, pollMs: 500 })).toEqual([]);
      const rows = await findAttempts(world.db.kysely, acked);
      const stored = new Map(rows.map((r) => [r.txn_id, JSON.stringify(decisionBody(r.txn_id, rowDecision(r)))]));
      const differing = [...answers].flatMap(([txnId, as]) =>
        as.filter((a) => a.status === 200 && JSON.stringify(a.body) !== stored.get(txnId)),
      );
      expect(differing).toEqual([]);
      expect(await queuesSettled(world.env.REDIS_URL!, world.prefix, Number(world.env.QUANTA_PARTITIONS))).toEqual({});
      console.log(
        `fault ingress kill -9 with a retrying client: ${acked.length} acknowledged, ${rows.length} decided, ${acked.length - rows.length} lost, ${differing.length} answered differently; ${retries} retries`,
      );
    },
  );

  it(
    "an ingress frozen 6 s while another serves, then thawed: what it had queued is decided once, and it answers again",
    { timeout: 300_000 },
    async () => {
      for (const s of alive("ingress")) await stopService(s, 3_000);
      const ports = [await freePort(), await freePort()];
      const frozen = await startService("ingress", { ...world.env, PORT: String(ports[0]) });
      services.push(frozen, await startService("ingress", { ...world.env, PORT: String(ports[1]) }));
      while (alive("worker").length < 2) services.push(await startService("worker", world.env));
      let answeredByFrozenAfter = 0;
      let frozenAtMs = 0;
      let thawedAtMs = 0;
      const run = await rushDuring(
        world,
        ports[0]!,
        { rate: 300, seconds: 16, runId: "iz", morePorts: [ports[1]!] },
        async () => {
          await sleep(4_000);
          frozen.child.kill("SIGSTOP"); // holding callbacks it had queued and was waiting on
          frozenAtMs = Date.now();
          await sleep(6_000);
          thawedAtMs = Date.now();
          frozen.child.kill("SIGCONT");
          await sleep(2_000);
          answeredByFrozenAfter = (await fetch(`http://127.0.0.1:${ports[0]}/readyz`)).status;
        },
      );
      expect(answeredByFrozenAfter).toBe(200); // thawed, it is ready again: nothing it held pinned it
      const v = await verdict(world, "ingress SIGSTOP 6 s beside a serving one, then SIGCONT", run);
      expect(v.acknowledged).toBeGreaterThan(0);
      // The other ingress (index 1) kept acknowledging what was sent to it while this one was frozen,
      // and the frozen one answered nothing sent to it in that time before it was thawed.
      const during = run.records.filter((r) => r.sentAtMs >= frozenAtMs && r.sentAtMs + r.ackMs < thawedAtMs);
      expect(during.filter((r) => r.ingress === 1 && (r.status === 200 || r.status === 202)).length).toBeGreaterThan(0);
      expect(during.filter((r) => r.ingress === 0 && r.status !== 0)).toEqual([]);
    },
  );

  it("saw no deadlock in Postgres", async () => {
    await expectNoDeadlock(world, services);
  });
});
