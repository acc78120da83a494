import { readFileSync, readdirSync } from "node:fs";
import pg from "pg";
import { clusterReady, createRedis, isCluster, type QuantaRedis, type Redis } from "@quanta/queue";

/**
 * What one attempt costs, read from the servers themselves (stable on a
 * noisy machine, unlike wall-clock rates): Redis CPU and commands, Postgres
 * commits and WAL bytes, and the peak RSS of each process.
 */
export interface ServerCounters {
  redisCpuS: number;
  redisCommands: number;
  redisUsedBytes: number;
  pgCommits: number;
  walLsn: string;
}

export class Probes {
  private readonly redis: QuantaRedis;
  private readonly pg: pg.Client;

  private constructor(redisUrl: string, databaseUrl: string) {
    this.redis = createRedis(redisUrl, "quanta-bench-probe");
    this.pg = new pg.Client({ connectionString: databaseUrl, application_name: "quanta-bench-probe" });
  }

  static async open(redisUrl: string, databaseUrl: string): Promise<Probes> {
    const probes = new Probes(redisUrl, databaseUrl);
    await probes.pg.connect();
    const redis = probes.redis;
    if (isCluster(redis)) await clusterReady(redis, 10_000);
    return probes;
  }

  /** On a cluster: CPU of every node (replicas replay every write), commands and memory of the masters. */
  private nodes(role: "all" | "master"): Redis[] {
    return isCluster(this.redis) ? this.redis.nodes(role) : [this.redis];
  }

  async read(database: string): Promise<ServerCounters> {
    const [cpus, statses, memories] = await Promise.all([
      Promise.all(this.nodes("all").map((n) => n.info("cpu"))),
      Promise.all(this.nodes("master").map((n) => n.info("commandstats"))),
      Promise.all(this.nodes("master").map((n) => n.info("memory"))),
    ]);
    const field = (text: string, name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, "m").exec(text)?.[1] ?? 0);
    const sum = (texts: string[], name: string) => texts.reduce((s, t) => s + field(t, name), 0);
    let commands = 0;
    for (const stats of statses)
      for (const m of stats.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) commands += Number(m[1]);
    const row = (
      await this.pg.query<{ commits: string; lsn: string }>(
        "select (select xact_commit from pg_stat_database where datname = $1) as commits, pg_current_wal_lsn()::text as lsn",
        [database],
      )
    ).rows[0]!;
    return {
      redisCpuS: sum(cpus, "used_cpu_user") + sum(cpus, "used_cpu_sys"),
      redisCommands: commands,
      redisUsedBytes: sum(memories, "used_memory"),
      pgCommits: Number(row.commits ?? 0),
      walLsn: row.lsn,
    };
  }

  async redisUsedBytes(): Promise<number> {
    const infos = await Promise.all(this.nodes("master").map((n) => n.info("memory")));
    return infos.reduce((s, info) => s + Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0), 0);
  }

  async walBytes(from: string, to: string): Promise<number> {
    return Number(
      (await this.pg.query<{ d: string }>("select pg_wal_lsn_diff($2, $1)::bigint as d", [from, to])).rows[0]!.d,
    );
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    await this.pg.end();
  }
}

/** Peak resident set (VmHWM) of a live process, in MiB. */
export function peakRssMiB(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Number(kb) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds (user + system) a live process has used so far; NaN when it cannot be read. */
export function processCpuS(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds used so far by every Postgres process on this machine (backends, WAL writer,
 * checkpointer…): the bench's database server is a local one, and its other databases are idle.
 */
export function postgresCpuS(): number {
  return commandCpuS("postgres");
}

/** CPU seconds used so far by every process whose command name is `comm` (redis-server, postgres). */
export function commandCpuS(comm: string): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() !== comm) continue;
    } catch {
      continue; // gone meanwhile
    }
    const s = processCpuS(Number(entry));
    if (Number.isFinite(s)) total += s;
  }
  return total;
}

/** USER_HZ: Linux reports utime and stime in 1/100 s on every architecture Node runs on here. */
const CLOCK_TICKS_PER_S = 100;
