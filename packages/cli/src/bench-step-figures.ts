import { percentiles, type RushRun } from "@quanta/loadtest";
import { peakRssMiB } from "./bench-probes.js";
import type { MeterReadings } from "./bench-step-meter.js";
import type { StepWorld } from "./bench-step-world.js";
import type { StepResult } from "./bench.js";
import type { ServiceProcess } from "./stack.js";

/**
 * A step's figures from what the load generator saw (answers, their statuses and latencies) and
 * from the meter (per attempt: server counters, CPU by process group and by process, memory).
 */
type AnswerFigures = Pick<
  StepResult,
  "sent" | "answered" | "dropped" | "errors" | "errorStatuses" | "achievedPerS" | "ackMs" | "share200" | "share202"
>;
type ServerFigures = Pick<
  StepResult,
  | "redisCpuUsPerAttempt"
  | "redisCommandsPerAttempt"
  | "redisMemory"
  | "pgCommitsPerAttempt"
  | "walBytesPerAttempt"
  | "rssPeakMiB"
  | "cpuUsPerAttempt"
  | "cpuUsPerAttemptByProcess"
>;

/** `answered`: the callbacks answered 200 or 202. */
export function answerFigures(run: RushRun, answered: number, stepS: number): AnswerFigures {
  // A forged callback's right answer is 401 (I5), anything else from it is an error; a 409 is the
  // right answer to a conflicting body.
  const failed = run.records.filter((r) =>
    r.kind === "forged" ? r.status !== 401 : r.status === 0 || r.status >= 500 || (r.status >= 400 && r.status !== 409),
  );
  const errorStatuses: Record<string, number> = {};
  for (const r of failed)
    errorStatuses[`${r.status}${r.kind ? ` ${r.kind}` : ""}`] =
      (errorStatuses[`${r.status}${r.kind ? ` ${r.kind}` : ""}`] ?? 0) + 1;
  const [p50, p99, p999] = percentiles(
    run.records.map((r) => r.ackMs),
    [50, 99, 99.9],
  ) as [number, number, number];
  return {
    sent: run.records.length,
    answered,
    dropped: run.dropped,
    errors: failed.length,
    errorStatuses,
    achievedPerS: answered / stepS,
    ackMs: { p50, p99, p999 },
    share200: run.records.filter((r) => r.status === 200).length / Math.max(1, run.records.length),
    share202: run.records.filter((r) => r.status === 202).length / Math.max(1, run.records.length),
  };
}

/** Per attempt (attempts: the answered callbacks, at least 1). */
export async function serverFigures(m: MeterReadings, world: StepWorld, attempts: number): Promise<ServerFigures> {
  const { services, probes } = world;
  const { before, after, cpuBefore, cpuAfter } = m;
  const rssPeakMiB: Record<string, number> = {};
  services.forEach((s, i) => (rssPeakMiB[processName(services, s, i)] = peakRssMiB(s.child.pid)));
  const redisCpuUsPerAttempt = ((after.redisCpuS - before.redisCpuS) * 1e6) / attempts;
  return {
    redisCpuUsPerAttempt,
    redisCommandsPerAttempt: (after.redisCommands - before.redisCommands) / attempts,
    redisMemory: { beforeBytes: before.redisUsedBytes, peakBytes: m.redisPeakBytes, afterBytes: after.redisUsedBytes },
    pgCommitsPerAttempt: (after.pgCommits - before.pgCommits) / attempts,
    walBytesPerAttempt: (await probes.walBytes(before.walLsn, after.walLsn)) / attempts,
    rssPeakMiB,
    cpuUsPerAttempt: {
      services: ((cpuAfter.services - cpuBefore.services) * 1e6) / attempts,
      postgres: ((cpuAfter.postgres - cpuBefore.postgres) * 1e6) / attempts,
      redis: redisCpuUsPerAttempt,
      driver: (cpuAfter.driver.user + cpuAfter.driver.system) / attempts,
    },
    cpuUsPerAttemptByProcess: Object.fromEntries(
      services.map((s, i) => [
        processName(services, s, i),
        ((cpuAfter.perProcess[i]! - cpuBefore.perProcess[i]!) * 1e6) / attempts,
      ]),
    ),
  };
}

/** ingress, worker-1, worker-2, …: the kind, numbered when there are several of it. */
const processName = (services: readonly ServiceProcess[], s: ServiceProcess, i: number) =>
  `${s.kind}${services.filter((x) => x.kind === s.kind).length > 1 ? `-${i}` : ""}`;
