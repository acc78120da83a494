import { expect } from "vitest";
import { checkAcknowledged, findAttempts, verifyDatabaseInvariants, waitUntilDecided } from "@quanta/db";
import { loadScenario, runRush, type RushRun } from "@quanta/loadtest";
import {
  answersAgainstStore,
  copiesAgainstFirst,
  freePort,
  startService,
  stopService,
  type ServiceProcess,
} from "@quanta/cli";
import { createRedis, queueName, queuePrefix } from "@quanta/queue";
import { deadlocksIn, type TestWorld } from "./world.js";
import { sleep } from "./poll.js";

/**
 * What every fault scenario shares: free ports, a private Redis started with the shipped
 * infra/redis/redis.conf (AOF, appendfsync always, noeviction) for the destructive cases, a rush
 * through the real ingress, and the verdict: every acknowledged attempt decided exactly once,
 * every 200 equal to the stored decision, I1-I6 in the database, the backlog drained.
 */
export { PrivateRedis, freePort } from "@quanta/cli";

export interface Verdict {
  scenario: string;
  acknowledged: number;
  decided: number;
  lost: number;
  doubled: number;
  answers: Record<string, number>;
}

/** Services a scenario started: ingresses (each on its own free port) and workers. */
export interface StartedServices {
  ports: number[];
  ingresses: ServiceProcess[];
  workers: ServiceProcess[];
}

/**
 * Starts `ingresses` ingress processes, each on a free port, then `workers` worker processes, on
 * the world's environment; each is added to `services`, which the file's afterAll stops.
 */
export async function startServices(
  world: TestWorld,
  services: ServiceProcess[],
  counts: { ingresses: number; workers: number },
): Promise<StartedServices> {
  const started: StartedServices = { ports: [], ingresses: [], workers: [] };
  for (let i = 0; i < counts.ingresses; i++) {
    const port = await freePort();
    started.ports.push(port);
    const ingress = await startService("ingress", { ...world.env, PORT: String(port) });
    // Handed to afterAll at once: a later start that fails must not leave this one running.
    services.push(ingress);
    started.ingresses.push(ingress);
  }
  for (let i = 0; i < counts.workers; i++) {
    const worker = await startService("worker", world.env);
    services.push(worker);
    started.workers.push(worker);
  }
  return started;
}

/**
 * A steady rush against the ingress on `port` (and, round robin, on `morePorts`) while `chaos` runs
 * (seed 7 and 64 connections unless told).
 */
export async function rushDuring(
  world: TestWorld,
  port: number,
  options: { rate: number; seconds: number; runId: string; morePorts?: number[]; seed?: number; connections?: number },
  chaos: () => Promise<void>,
): Promise<RushRun> {
  const scenario = {
    ...loadScenario(),
    durationS: options.seconds,
    payers: 20_000,
    arrival: { peakRatePerS: options.rate, rampS: 1, plateauS: options.seconds - 1, endFraction: 1 },
  };
  const [run] = await Promise.all([
    runRush({
      baseUrl: `http://127.0.0.1:${port}`,
      moreBaseUrls: (options.morePorts ?? []).map((p) => `http://127.0.0.1:${p}`),
      acquirerId: world.acquirerId,
      secret: world.secret,
      scenario,
      seed: options.seed ?? 7,
      runId: options.runId,
      connections: options.connections ?? 64,
      maxInFlight: 10_000,
    }),
    chaos(),
  ]);
  return run;
}

/** Waits until no job of the deployment waits, runs or sits failed; returns what is left otherwise. */
export async function queuesSettled(
  redisUrl: string,
  prefix: string,
  partitions: number,
  timeoutMs = 60_000,
): Promise<Record<string, number>> {
  const redis = createRedis(redisUrl, "faults-settled");
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left: Record<string, number> = {};
      for (let p = 0; p < partitions; p++) {
        const q = `${queuePrefix(prefix, p)}:${queueName(p)}`;
        const [wait, active, failed, delayed] = await Promise.all([
          redis.llen(`${q}:wait`),
          redis.llen(`${q}:active`),
          redis.zcard(`${q}:failed`),
          redis.zcard(`${q}:delayed`),
        ]);
        for (const [state, n] of Object.entries({ wait, active, failed, delayed }))
          if (n > 0) left[`p${p} ${state}`] = n;
      }
      if (Object.keys(left).length === 0 || Date.now() > deadline) return left;
      await sleep(500);
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * "A 5xx means nothing was accepted" (issue #19 item 2): no txn answered 503, and sent once, has a
 * decision. Returns the run's 503 answers, for the scenario to say how many it expected.
 */
export async function expectRefusalsUndecided(world: TestWorld, run: RushRun): Promise<RushRun["records"]> {
  const refused = run.records.filter((r) => r.status === 503);
  const sentOnce = refused.filter((r) => run.records.filter((x) => x.txnId === r.txnId).length === 1);
  const decided = await findAttempts(
    world.db.kysely,
    sentOnce.map((r) => ({ acquirerId: world.acquirerId, txnId: r.txnId })),
  );
  expect(decided.map((d) => d.txn_id)).toEqual([]);
  return refused;
}

/**
 * The checks every scenario ends with (every acknowledged attempt decided once, every answer the
 * stored decision, resends answered as the first and other bodies 409, I1-I6, and unless
 * `drained: false` the queues emptied); returns the figures the closing note quotes.
 */
export async function verdict(
  world: TestWorld,
  scenario: string,
  run: RushRun,
  options: { campaignId?: string; drained?: boolean } = {},
): Promise<Verdict> {
  const campaignId = options.campaignId ?? "qianan-2020-b2";
  const acked = run.records.filter((r) => r.kind !== "forged" && (r.status === 200 || r.status === 202));
  const keys = [...new Set(acked.map((r) => r.txnId))].map((txnId) => ({ acquirerId: world.acquirerId, txnId }));
  const missing = await waitUntilDecided(world.db.kysely, keys, { timeoutMs: 120_000, pollMs: 500 });
  const rows = await findAttempts(
    world.db.kysely,
    [...new Set(run.records.map((r) => r.txnId))].map((txnId) => ({ acquirerId: world.acquirerId, txnId })),
  );
  const differing = answersAgainstStore(run.records, rows);
  const copies = copiesAgainstFirst(run.records);
  const checks = await verifyDatabaseInvariants(world.db.kysely, campaignId);
  const answers: Record<string, number> = {};
  for (const r of run.records) answers[r.status] = (answers[r.status] ?? 0) + 1;
  const v: Verdict = {
    scenario,
    acknowledged: keys.length,
    decided: rows.length,
    lost: missing.length,
    doubled: differing.length,
    answers,
  };
  console.log(
    `fault ${scenario}: ${v.acknowledged} acknowledged, ${v.decided} decided, ${v.lost} lost, ${v.doubled} answers disagreeing with the stored decision, ${copies.resendsAnswered} resends answered as first, ${copies.conflicts409} other bodies 409; answers ${JSON.stringify(answers)}`,
  );
  expect(missing).toEqual([]);
  // I3 counted once the wait is over: every acknowledged txn has exactly one decision (none twice).
  expect(await checkAcknowledged(world.db.kysely, keys)).toMatchObject({ ok: true });
  expect(differing).toEqual([]);
  // Every scenario sends resends and other bodies (rush-0913's shares): each resend got its first
  // answer, each other body 409 once the first was acknowledged, and some of each were answered.
  expect(copies.wrong).toEqual([]);
  expect(copies.resendsAnswered).toBeGreaterThan(0);
  expect(copies.conflicts409).toBeGreaterThan(0);
  if (options.drained !== false)
    expect(await queuesSettled(world.env.REDIS_URL!, world.prefix, Number(world.env.QUANTA_PARTITIONS ?? 4))).toEqual(
      {},
    );
  expect(checks.filter((c) => !c.ok)).toEqual([]);
  return v;
}

/**
 * The last case of a fault file: its services stopped (a Postgres backend publishes its counters
 * when it exits), then no deadlock was ever detected in the file's database. A Postgres crash
 * (stop -m immediate) resets the counters: that file's check covers the time after the restart.
 */
export async function expectNoDeadlock(world: TestWorld, services: readonly ServiceProcess[]): Promise<void> {
  await Promise.all(services.map((s) => stopService(s, 3_000)));
  expect(await deadlocksIn(world)).toBe(0);
}
