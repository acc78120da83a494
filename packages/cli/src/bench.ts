import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import {
  connect,
  deadlocksOnceQuiet,
  dropDatabase,
  findAttempts,
  inversionWindowMs,
  verifyDatabaseInvariants,
  waitUntilDecided,
} from "@quanta/db";
import { CallbackClient, loadScenario, percentiles, runRush, type Scenario, type SentRecord } from "@quanta/loadtest";
import { answersAgainstStore, copiesAgainstFirst } from "./answer-checks.js";
import { warmUpCampaign, warmUpScenario } from "./bench-warm-up.js";
import { Probes, peakRssMiB, postgresCpuS, processCpuS, type ServerCounters } from "./bench-probes.js";
import { deletePrefix } from "./redis-cleanup.js";
import { SEED_CAMPAIGN_PATH, loadCampaign, migrate, readCampaignFile } from "./setup.js";
import { serviceEnv, startQuanta, startService, stopService, type ServiceProcess } from "./stack.js";
import { PrivateRedis } from "./private-redis.js";
import { PrivateRedisCluster } from "./redis-cluster.js";

/**
 * `npm run bench`: open-model ladders against three systems, alternating,
 * in one run.
 *   quanta - as `npm run rush` deploys it (one ingress queueing, two workers deciding);
 *   direct - one Postgres transaction per callback on the tier's hot row;
 *   floor  - verify, parse, classify, answer; nothing stored.
 * Each step: a fresh database with the seed campaign, the system started,
 * `stepS` seconds of arrivals at a fixed rate (the rush scenario's payments),
 * the backlog drained, figures read, invariants checked, everything stopped.
 * A system climbs the ladder until a rate is not sustained (any error or
 * dropped arrival, achieved < 95 % of offered, or answer p99 > 100 ms).
 */
export type SystemName = "quanta" | "direct" | "floor" | "quanta-aof" | "quanta-1w" | "quanta-cluster";
/** The default run. Asked for by name: quanta-aof (quanta on a private Redis with the shipped
 * redis.conf: AOF, appendfsync always), to measure what durability across a Redis crash costs;
 * quanta-1w (one worker process owning every partition instead of two), to measure what a second
 * process costs on a 2-core box, against what it buys (a worker's death is covered by the other);
 * quanta-cluster (quanta on a private Redis Cluster: 3 masters with one replica each, AOF always
 * on every node, jobs confirmed on a replica), beside quanta on the single Redis (--redis-cluster). */
export const SYSTEMS: readonly SystemName[] = ["quanta", "direct", "floor"];
export const ALL_SYSTEMS: readonly SystemName[] = [...SYSTEMS, "quanta-aof", "quanta-1w", "quanta-cluster"];
/**
 * The default ladder: fine steps where the direct design gives out (500-750/s), then on to where
 * the floor does (the load generator's own limit, about 12,000/s on a 2-core box), so that every
 * system's maximum is found and not the ladder's top.
 */
export const DEFAULT_RATES: readonly number[] = [
  500, 600, 750, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 10_000, 12_000, 14_000, 16_000,
];

export interface BenchSettings {
  databaseUrl: string;
  redisUrl: string;
  rates: number[];
  reps: number;
  stepS: number;
  /** Payer partitions of every step's database (the configuration's, as `npm run rush` deploys). */
  partitions: number;
  systems: readonly SystemName[];
  out: (line: string) => void;
}

export interface StepResult {
  system: SystemName;
  rep: number;
  offeredPerS: number;
  sent: number;
  answered: number;
  dropped: number;
  errors: number;
  /** Failed answers by status (0: no answer) and the kind of callback the driver sent. */
  errorStatuses: Record<string, number>;
  achievedPerS: number;
  ackMs: { p50: number; p99: number; p999: number };
  share200: number;
  share202: number;
  decisionMs?: { p50: number; p99: number };
  decidedPerS?: number;
  allGrantedS?: number | null;
  inversionMs?: number | null;
  redisCpuUsPerAttempt: number;
  redisCommandsPerAttempt: number;
  redisMemory: { beforeBytes: number; peakBytes: number; afterBytes: number };
  pgCommitsPerAttempt: number;
  walBytesPerAttempt: number;
  rssPeakMiB: Record<string, number>;
  /**
   * CPU (user + system) per attempt, from arrivals to the last decision, by process group: the
   * system's own processes, every Postgres process, Redis (INFO), and the bench process (the load
   * generator). Their sum against the machine's cores bounds the rate the box can carry.
   */
  cpuUsPerAttempt: { services: number; postgres: number; redis: number; driver: number };
  /** The same for each of the system's processes (ingress, worker-1, …): which one the services' share is. */
  cpuUsPerAttemptByProcess?: Record<string, number>;
  invariantsOk: boolean | null;
  invariantProblems: string[];
  /** Deadlocks Postgres detected in the step's database (read after the system stopped). */
  deadlocks?: number;
  sustained: boolean;
  why: string;
}

const P99_LIMIT_MS = 100;
/** The first warm-up (the stock path), at up to WARMUP_RATE_MAX_PER_S: enough requests for V8 to tier it up. */
const WARMUP_S = 3;
const WARMUP_RATE_MAX_PER_S = 1_500;
/** The second (payments that take no stock), at the step's own rate when that is higher. */
const WARMUP_AT_RATE_S = 2;
/** Connections of the load generator's pool (undici opens them as concurrency needs them). */
const CONNECTIONS_MAX = 512;

export async function bench(settings: BenchSettings): Promise<StepResult[]> {
  const base = loadScenario();
  const results: StepResult[] = [];
  for (let rep = 1; rep <= settings.reps; rep++) {
    const climbing = new Set(settings.systems);
    for (const rate of settings.rates) {
      for (const system of settings.systems) {
        if (!climbing.has(system)) continue;
        const r = await step(settings, system, rep, rate, base);
        results.push(r);
        settings.out(
          `rep ${rep} ${system.padEnd(6)} ${String(rate).padStart(5)}/s -> ${r.achievedPerS.toFixed(0).padStart(5)}/s  p99 ${r.ackMs.p99.toFixed(1).padStart(7)} ms  ` +
            `200 ${(100 * r.share200).toFixed(1)} %  errors ${r.errors}  dropped ${r.dropped}  ${r.sustained ? "sustained" : `not sustained (${r.why})`}`,
        );
        if (!r.sustained) climbing.delete(system);
      }
      if (climbing.size === 0) break;
    }
  }
  return results;
}

async function step(
  settings: BenchSettings,
  system: SystemName,
  rep: number,
  rate: number,
  base: Scenario,
): Promise<StepResult> {
  const tag = `${system.replace(/-/g, "_")}_${rate}_${rep}_${randomBytes(2).toString("hex")}`;
  const dbName = `quanta_bench_${tag}`;
  const url = new URL(settings.databaseUrl);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  const prefix = `quanta-bench-${tag}`;
  const acquirerId = "bench-acquirer";
  const secret = randomBytes(16).toString("hex");
  await migrate(databaseUrl, settings.partitions);
  const campaign = readCampaignFile(SEED_CAMPAIGN_PATH);
  await loadCampaign(databaseUrl, campaign, settings.partitions);
  await loadCampaign(databaseUrl, warmUpCampaign(SEED_CAMPAIGN_PATH), settings.partitions);
  // Started last before the try whose finally stops it.
  const ownRedis =
    system === "quanta-aof"
      ? await PrivateRedis.start()
      : system === "quanta-cluster"
        ? await PrivateRedisCluster.start()
        : undefined;
  const redisUrl = ownRedis?.url ?? settings.redisUrl;
  const env = serviceEnv({
    databaseUrl,
    redisUrl,
    prefix,
    acquirerSecrets: `${acquirerId}=${secret}`,
    partitions: settings.partitions,
    logLevel: "error",
  });
  const services: ServiceProcess[] = [];
  const probes = await Probes.open(redisUrl, databaseUrl);
  const db = connect({
    connectionString: databaseUrl,
    poolMax: 2,
    statementTimeoutMs: 120_000,
    applicationName: "quanta-bench",
  });
  try {
    if (system === "quanta" || system === "quanta-aof" || system === "quanta-1w" || system === "quanta-cluster") {
      await startQuanta(env, { workers: system === "quanta-1w" ? 1 : 2, partitions: settings.partitions, services });
    } else {
      services.push(await startService(system, env));
    }
    const scenario: Scenario = {
      ...base,
      durationS: settings.stepS,
      arrival: { peakRatePerS: rate, rampS: 0, plateauS: settings.stepS, endFraction: 1 },
      forgedShare: 0,
      // The scenario's resends and other bodies stay in: every step checks their answers (I4).
    };
    // Warm-ups, not measured, through the connections the step then uses. First the warm-up
    // campaign (bench-warm-up.ts: the same stock path, none of the measured campaign's vouchers) at
    // up to WARMUP_RATE_MAX_PER_S, enough requests for V8 to tier the stock path up (a step that
    // started cold spent its first second 100-800 ms behind, floor and quanta alike). Then payments
    // below every threshold (no stock) at the step's own rate: the HTTP side, the connection pool
    // and the load generator are in their steady state when the measured seconds start, and what
    // those seconds begin with is what the opening minute begins with, the demand for stock.
    const baseUrl = `http://127.0.0.1:${services[0]!.port}`;
    const client = new CallbackClient(baseUrl, acquirerId, secret, CONNECTIONS_MAX);
    const send = (s: Scenario, seed: number, runId: string) =>
      runRush({
        baseUrl,
        acquirerId,
        secret,
        scenario: s,
        seed,
        runId,
        connections: CONNECTIONS_MAX,
        maxInFlight: 10_000,
        client,
      });
    const steady = (ratePerS: number, durationS: number) => ({
      durationS,
      arrival: { ...scenario.arrival, peakRatePerS: ratePerS, plateauS: durationS },
    });
    const servicesCpuS = () => services.reduce((sum, x) => sum + processCpuS(x.child.pid), 0);
    const perProcessCpuS = () => services.map((x) => processCpuS(x.child.pid));
    let cpuBefore: { services: number; postgres: number; driver: NodeJS.CpuUsage; perProcess: number[] };
    let before: ServerCounters;
    let peakBytes = 0;
    let sampler: NodeJS.Timeout | undefined;
    let run: Awaited<ReturnType<typeof runRush>>;
    try {
      await send(
        { ...warmUpScenario(scenario), ...steady(Math.min(rate, WARMUP_RATE_MAX_PER_S), WARMUP_S) },
        1,
        `w${rep}x${rate}`,
      );
      const floorFen = Math.min(...campaign.activities.flatMap((a) => a.tiers.map((t) => t.thresholdFen)));
      if (rate > WARMUP_RATE_MAX_PER_S && floorFen > 1) {
        await send(
          {
            ...scenario,
            ...steady(rate, WARMUP_AT_RATE_S),
            spendMixFen: [{ fromFen: 1, toFen: floorFen - 1, weight: 1 }],
            resendShare: 0,
          },
          2,
          `v${rep}x${rate}`,
        );
      }
      cpuBefore = {
        services: servicesCpuS(),
        postgres: postgresCpuS(),
        driver: process.cpuUsage(),
        perProcess: perProcessCpuS(),
      };
      before = await probes.read(dbName);
      peakBytes = before.redisUsedBytes;
      sampler = setInterval(() => {
        probes.redisUsedBytes().then(
          (b) => (peakBytes = Math.max(peakBytes, b)),
          () => undefined,
        );
      }, 250);
      run = await send(scenario, rep * 1_000 + rate, `b${rep}x${rate}`);
    } catch (error) {
      clearInterval(sampler);
      throw error;
    } finally {
      await client.close();
    }

    const acked = run.records.filter((r) => r.status === 200 || r.status === 202);
    const keys = [...new Set(acked.map((r) => r.txnId))].map((txnId) => ({ acquirerId, txnId }));
    const missing =
      system === "floor" ? [] : await waitUntilDecided(db.kysely, keys, { timeoutMs: 120_000, pollMs: 250 });
    clearInterval(sampler);
    const cpuAfter = {
      services: servicesCpuS(),
      postgres: postgresCpuS(),
      driver: process.cpuUsage(cpuBefore.driver),
      perProcess: perProcessCpuS(),
    };
    await new Promise((r) => setTimeout(r, 1_200)); // Postgres publishes commit counts about once a second
    const after = await probes.read(dbName);
    const processName = (s: ServiceProcess, i: number) =>
      `${s.kind}${services.filter((x) => x.kind === s.kind).length > 1 ? `-${i}` : ""}`;
    const rssPeakMiB: Record<string, number> = {};
    services.forEach((s, i) => (rssPeakMiB[processName(s, i)] = peakRssMiB(s.child.pid)));

    const attempts = Math.max(1, acked.length);
    // A forged callback's right answer is 401 (I5), anything else from it is an error; a 409 is the
    // right answer to a conflicting body.
    const failed = run.records.filter((r) =>
      r.kind === "forged"
        ? r.status !== 401
        : r.status === 0 || r.status >= 500 || (r.status >= 400 && r.status !== 409),
    );
    const errors = failed.length;
    const errorStatuses: Record<string, number> = {};
    for (const r of failed)
      errorStatuses[`${r.status}${r.kind ? ` ${r.kind}` : ""}`] =
        (errorStatuses[`${r.status}${r.kind ? ` ${r.kind}` : ""}`] ?? 0) + 1;
    const [p50, p99, p999] = percentiles(
      run.records.map((r) => r.ackMs),
      [50, 99, 99.9],
    ) as [number, number, number];
    const result: StepResult = {
      system,
      rep,
      offeredPerS: rate,
      sent: run.records.length,
      answered: acked.length,
      dropped: run.dropped,
      errors,
      errorStatuses,
      achievedPerS: acked.length / settings.stepS,
      ackMs: { p50, p99, p999 },
      share200: run.records.filter((r) => r.status === 200).length / Math.max(1, run.records.length),
      share202: run.records.filter((r) => r.status === 202).length / Math.max(1, run.records.length),
      redisCpuUsPerAttempt: ((after.redisCpuS - before.redisCpuS) * 1e6) / attempts,
      redisCommandsPerAttempt: (after.redisCommands - before.redisCommands) / attempts,
      redisMemory: { beforeBytes: before.redisUsedBytes, peakBytes, afterBytes: after.redisUsedBytes },
      pgCommitsPerAttempt: (after.pgCommits - before.pgCommits) / attempts,
      walBytesPerAttempt: (await probes.walBytes(before.walLsn, after.walLsn)) / attempts,
      rssPeakMiB,
      cpuUsPerAttempt: {
        services: ((cpuAfter.services - cpuBefore.services) * 1e6) / attempts,
        postgres: ((cpuAfter.postgres - cpuBefore.postgres) * 1e6) / attempts,
        redis: ((after.redisCpuS - before.redisCpuS) * 1e6) / attempts,
        driver: (cpuAfter.driver.user + cpuAfter.driver.system) / attempts,
      },
      cpuUsPerAttemptByProcess: Object.fromEntries(
        services.map((s, i) => [
          processName(s, i),
          ((cpuAfter.perProcess[i]! - cpuBefore.perProcess[i]!) * 1e6) / attempts,
        ]),
      ),
      invariantsOk: null,
      invariantProblems: [],
      sustained: false,
      why: "",
    };
    if (system !== "floor")
      Object.assign(
        result,
        await decisionFigures(db, campaign.id, run.startedAtMs, missing, keys.length, run.records, acquirerId),
      );
    // A Postgres backend publishes its counters when it exits: stop the system, then count.
    await Promise.all(services.map((x) => stopService(x, 5_000)));
    result.deadlocks = await deadlocksOnceQuiet(db.kysely, ["quanta-bench", "quanta-bench-probe"]);
    if (result.deadlocks > 0) {
      result.invariantsOk = false;
      result.invariantProblems.push(`${result.deadlocks} deadlocks detected by Postgres`);
    }
    const reasons: string[] = [];
    if (result.errors > 0)
      reasons.push(
        `${result.errors} errors (${Object.entries(result.errorStatuses)
          .map(([k, n]) => `${k}: ${n}`)
          .join(", ")})`,
      );
    if (result.dropped > 0) reasons.push(`${result.dropped} dropped`);
    if (result.achievedPerS < 0.95 * rate) reasons.push(`achieved ${result.achievedPerS.toFixed(0)}/s`);
    if (result.ackMs.p99 > P99_LIMIT_MS) reasons.push(`p99 ${result.ackMs.p99.toFixed(0)} ms`);
    if (result.invariantsOk === false) reasons.push(`INVARIANTS BROKEN: ${result.invariantProblems.join("; ")}`);
    result.sustained = reasons.length === 0;
    result.why = reasons.join(", ");
    return result;
  } finally {
    await Promise.all(services.map((s) => stopService(s, 5_000)));
    await probes.close();
    await db.close();
    await deletePrefix(redisUrl, prefix).catch(() => 0);
    await ownRedis?.stop();
    await dropDatabase(databaseUrl).catch(() => undefined);
  }
}

async function decisionFigures(
  db: ReturnType<typeof connect>,
  campaignId: string,
  startedAtMs: number,
  missing: string[],
  acknowledged: number,
  records: readonly SentRecord[],
  acquirerId: string,
) {
  const lat = await sql<{ p50: number | null; p99: number | null; n: string; last: Date | null }>`
    select percentile_cont(0.5) within group (order by ms) as p50, percentile_cont(0.99) within group (order by ms) as p99,
           count(*) as n, max(decided_at) as last
      from (select extract(epoch from decided_at - received_at) * 1000 as ms, decided_at from attempts
             where received_at >= ${new Date(startedAtMs)}) d`.execute(db.kysely);
  const granted = await sql<{ n: string; last: Date | null }>`
    select count(*) as n, max(decided_at) as last from attempts where status = 'granted' and campaign_id = ${campaignId}`.execute(
    db.kysely,
  );
  const quota = await sql<{ q: string }>`select sum(quota) as q from tiers where campaign_id = ${campaignId}`.execute(
    db.kysely,
  );
  const checks = await verifyDatabaseInvariants(db.kysely, campaignId);
  const problems = checks.filter((c) => !c.ok).map((c) => `${c.id}: ${c.detail}`);
  if (missing.length > 0) problems.push(`I3: ${missing.length} of ${acknowledged} acknowledged attempts undecided`);
  // I4 from the answers: each against the stored decision and against its txn's first answer, and
  // evidence that resends and other bodies were sent and answered (200 as before, 409).
  const rows = await findAttempts(
    db.kysely,
    [...new Set(records.map((r) => r.txnId))].map((txnId) => ({ acquirerId, txnId })),
  );
  const copies = copiesAgainstFirst(records);
  const wrong = [...answersAgainstStore(records, rows), ...copies.wrong];
  if (wrong.length > 0) problems.push(`I4: ${wrong.length} answers disagree (${wrong.slice(0, 2).join("; ")})`);
  if (records.some((r) => r.kind === "resend") && copies.resendsAnswered === 0)
    problems.push("I4: resends were sent and none was answered 200");
  if (records.some((r) => r.kind === "conflict") && copies.conflicts409 === 0)
    problems.push("I4: other bodies were sent and none was answered 409");
  const l = lat.rows[0]!;
  const g = granted.rows[0]!;
  const lastMs = l.last ? new Date(l.last).getTime() : startedAtMs;
  return {
    decisionMs: { p50: l.p50 ?? Number.NaN, p99: l.p99 ?? Number.NaN },
    decidedPerS: Number(l.n) / Math.max(0.001, (lastMs - startedAtMs) / 1000),
    allGrantedS:
      Number(g.n) === Number(quota.rows[0]!.q) && g.last ? (new Date(g.last).getTime() - startedAtMs) / 1000 : null,
    inversionMs: await inversionWindowMs(db.kysely, campaignId),
    invariantsOk: problems.length === 0,
    invariantProblems: problems,
  };
}

export type { ServerCounters };
