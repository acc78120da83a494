import { sql, type Kysely } from "kysely";
import type { Database } from "@quanta/db";
import { keys, slotOf } from "@quanta/queue";
import { table, type SentRecord } from "@quanta/loadtest";
import { commandCpuS, processCpuS } from "./bench-probes.js";
import type { Owners } from "./owners.js";
import type { PrivateRedisCluster } from "./redis-cluster.js";
import type { ServiceProcess } from "./stack.js";

/**
 * The rush report's deployment section: each process's share of the work and the CPU each role
 * spent per attempt, and on a Redis Cluster which master serves which partitions. CPU is read from
 * /proc around the load (user + system seconds), so it is what the processes spent on this
 * machine, load generator excluded; Redis and Postgres are every redis-server and postgres
 * process here (the rush's own, and idle others).
 */
export interface CpuSnapshot {
  byPid: Map<number, number>;
  redisS: number;
  postgresS: number;
}

export function cpuSnapshot(services: readonly ServiceProcess[]): CpuSnapshot {
  const byPid = new Map<number, number>();
  for (const s of services) if (s.child.pid) byPid.set(s.child.pid, processCpuS(s.child.pid));
  return { byPid, redisS: commandCpuS("redis-server"), postgresS: commandCpuS("postgres") };
}

export interface DeploymentInput {
  ingresses: readonly ServiceProcess[];
  owners: Owners;
  records: readonly SentRecord[];
  before: CpuSnapshot;
  after: CpuSnapshot;
  prefix: string;
  partitions: number;
  cluster?: PrivateRedisCluster;
}

export interface DeploymentReport {
  lines: string[];
  json: Record<string, unknown>;
}

const usPer = (cpuS: number, n: number) => (n > 0 && Number.isFinite(cpuS) ? Math.round((cpuS * 1e6) / n) : Number.NaN);
const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : "-");
const us = (v: number) => (Number.isFinite(v) ? `${v.toLocaleString("en-US")} µs` : "-");

export async function deploymentReport(db: Kysely<Database>, input: DeploymentInput): Promise<DeploymentReport> {
  const answered = input.records.filter((r) => r.status !== 0).length;
  const spent = (pid: number | undefined) =>
    pid ? (input.after.byPid.get(pid) ?? Number.NaN) - (input.before.byPid.get(pid) ?? Number.NaN) : Number.NaN;

  const ingressRows = input.ingresses.map((s, i) => {
    const n = input.records.filter((r) => r.ingress === i && r.status !== 0).length;
    return { pid: s.child.pid ?? 0, answers: n, cpuS: spent(s.child.pid) };
  });
  const perPartition = await sql<{ partition: number; n: string }>`
    select partition, count(*) as n from attempts where decided_by = 'worker' group by partition`.execute(db);
  const decidedIn = new Map(perPartition.rows.map((r) => [Number(r.partition), Number(r.n)]));
  const workerDecided = [...decidedIn.values()].reduce((a, b) => a + b, 0);
  const workerRows = input.owners.map((o) => ({
    pid: o.pid,
    partitions: o.partitions,
    decided: o.partitions.reduce((n, p) => n + (decidedIn.get(p) ?? 0), 0),
    cpuS: spent(o.pid),
  }));
  const redisS = input.after.redisS - input.before.redisS;
  const postgresS = input.after.postgresS - input.before.postgresS;

  const lines: string[] = [];
  lines.push(
    `Deployment: ${input.ingresses.length} ingresses, ${input.owners.length} workers, ${input.partitions} partitions, ${input.cluster ? `a Redis Cluster of ${input.cluster.masters} masters (${input.cluster.replicas} replica each)` : "one Redis"}`,
  );
  const rows: string[][] = [];
  for (const r of ingressRows)
    rows.push([
      `ingress pid ${r.pid}`,
      `${r.answers.toLocaleString("en-US")} answers (${pct(r.answers, answered)})`,
      us(usPer(r.cpuS, r.answers)),
    ]);
  for (const w of workerRows)
    rows.push([
      `worker pid ${w.pid} [${w.partitions.join(",")}]`,
      `${w.decided.toLocaleString("en-US")} decisions (${pct(w.decided, workerDecided)})`,
      us(usPer(w.cpuS, w.decided)),
    ]);
  const ingressCpu = ingressRows.reduce((s, r) => s + r.cpuS, 0);
  const workerCpu = workerRows.reduce((s, w) => s + w.cpuS, 0);
  rows.push(["all ingresses", `${answered.toLocaleString("en-US")} answers`, us(usPer(ingressCpu, answered))]);
  rows.push(["all workers", `per answer`, us(usPer(workerCpu, answered))]);
  rows.push(["Redis (every redis-server here)", "per answer", us(usPer(redisS, answered))]);
  rows.push(["Postgres (every postgres here)", "per answer", us(usPer(postgresS, answered))]);
  lines.push(table(["process", "share", "CPU per attempt"], rows));

  let masters: { node: string; partitions: number[] }[] | undefined;
  if (input.cluster) {
    const byPort = new Map<number, number[]>();
    for (let p = 0; p < input.partitions; p++) {
      const port = await input.cluster.masterOf(slotOf(keys.backlog(input.prefix, p)));
      byPort.set(port, [...(byPort.get(port) ?? []), p]);
    }
    const all = await input.cluster.masterPorts();
    masters = all.map((m) => ({ node: `127.0.0.1:${m.port}`, partitions: byPort.get(m.port) ?? [] }));
    lines.push(
      `partitions over the masters: ${masters.map((m) => `${m.node} [${m.partitions.join(",") || "none"}]`).join("; ")}`,
    );
  }
  return {
    lines,
    json: {
      ingresses: ingressRows,
      workers: workerRows,
      cpuUsPerAttempt: {
        ingress: usPer(ingressCpu, answered),
        worker: usPer(workerCpu, answered),
        redis: usPer(redisS, answered),
        postgres: usPer(postgresS, answered),
      },
      redis: input.cluster ? { mode: "cluster", masters } : { mode: "single" },
    },
  };
}
