import { deadlocksOnceQuiet, waitUntilDecided } from "@quanta/db";
import { loadScenario, type Scenario } from "@quanta/loadtest";
import type { ServerCounters } from "./bench-probes.js";
import { closeStepWorld, openStepWorld, startSystem } from "./bench-step-world.js";
import { driveStep, stepScenario } from "./bench-step-load.js";
import { answerFigures, serverFigures } from "./bench-step-figures.js";
import { decisionFigures } from "./bench-step-decisions.js";
import { stopService } from "./stack.js";

/**
 * `npm run bench`: open-model ladders against three systems, alternating,
 * in one run.
 *   quanta - as `npm run rush` deploys it (one ingress queueing, two workers deciding);
 *   direct - one Postgres transaction per callback on the tier's hot row;
 *   floor  - verify, parse, classify, answer; nothing stored.
 * Each step: a fresh database with the seed campaign, the system started
 * (bench-step-world.ts), `stepS` seconds of arrivals at a fixed rate (the rush
 * scenario's payments, after warm-ups: bench-step-load.ts), the backlog drained,
 * figures read (bench-step-meter.ts, bench-step-figures.ts), invariants checked
 * (bench-step-decisions.ts), everything stopped.
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
  const world = await openStepWorld(settings, system, rep, rate);
  try {
    await startSystem(world, system, settings.partitions);
    const { run, meter } = await driveStep(world, stepScenario(base, settings.stepS, rate), rep, rate);
    const acked = run.records.filter((r) => r.status === 200 || r.status === 202);
    const keys = [...new Set(acked.map((r) => r.txnId))].map((txnId) => ({ acquirerId: world.acquirerId, txnId }));
    const missing =
      system === "floor" ? [] : await waitUntilDecided(world.db.kysely, keys, { timeoutMs: 120_000, pollMs: 250 });
    meter.stopSampling();
    const readings = await meter.finish();
    const attempts = Math.max(1, acked.length);
    const result: StepResult = {
      system,
      rep,
      offeredPerS: rate,
      ...answerFigures(run, acked.length, settings.stepS),
      ...(await serverFigures(readings, world, attempts)),
      invariantsOk: null,
      invariantProblems: [],
      sustained: false,
      why: "",
    };
    if (system !== "floor") {
      const { db, campaign, acquirerId } = world;
      Object.assign(
        result,
        await decisionFigures(db, campaign.id, run.startedAtMs, missing, keys.length, run.records, acquirerId),
      );
    }
    // A Postgres backend publishes its counters when it exits: stop the system, then count.
    await Promise.all(world.services.map((x) => stopService(x, 5_000)));
    result.deadlocks = await deadlocksOnceQuiet(world.db.kysely, ["quanta-bench", "quanta-bench-probe"]);
    if (result.deadlocks > 0) {
      result.invariantsOk = false;
      result.invariantProblems.push(`${result.deadlocks} deadlocks detected by Postgres`);
    }
    return judged(result, rate);
  } finally {
    await closeStepWorld(world);
  }
}

/**
 * The step's verdict: sustained when nothing failed or was dropped, at least 95 % of the offered
 * rate was achieved, answer p99 stayed within the limit and every invariant held; else why not.
 */
function judged(result: StepResult, rate: number): StepResult {
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
}

export type { ServerCounters };
