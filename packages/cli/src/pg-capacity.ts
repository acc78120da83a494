import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import pg from "pg";
import type { Campaign } from "@quanta/domain";
import { connect, dropDatabase } from "@quanta/db";
import { percentiles, table } from "@quanta/loadtest";
import { postgresCpuS } from "./bench-probes.js";
import { SEED_CAMPAIGN_PATH, loadCampaign, migrate, readCampaignFile } from "./setup.js";
import { CapacityRounds } from "./pg-capacity-rounds.js";
import { databaseUrlNamed } from "./run-world.js";

/**
 * `quanta pg-capacity`: what one Postgres primary on this machine commits of quanta's own decision
 * rounds (decideRounds, the worker's path: read shares and holders, insert the decisions, take the
 * stock, refill when a share runs out), with nothing else in the way: no HTTP, no Redis, no
 * queue. For each round size and number of concurrent partitions, rounds run back to back for
 * `seconds`, each partition on its own connection, as its owner would; the figures are commits
 * (rounds) per second, decisions per second, WAL bytes per second and per decision, Postgres CPU
 * per decision, and round latency. The campaign is the seed with every quota and the budget
 * multiplied, so no round meets an empty tier; every attempt is a new payer.
 * Trade-off: the load generator (this process) shares the 2 cores with Postgres: the ceiling it
 * finds is this box's with a client on it, which is how the workers share it too.
 */
export interface PgCapacitySettings {
  databaseUrl: string;
  roundSizes: readonly number[];
  concurrencies: readonly number[];
  seconds: number;
  out: (line: string) => void;
}

export interface PgCapacityRow {
  roundSize: number;
  partitions: number;
  /** Rounds of roundSize attempts, each decided in full (a round that refills commits more than once). */
  roundsPerS: number;
  /** Every transaction: round commits and refills. */
  commitsPerS: number;
  decisionsPerS: number;
  walBytesPerS: number;
  walBytesPerDecision: number;
  pgCpuUsPerDecision: number;
  roundMs: { p50: number; p99: number };
}

const STOCK_FACTOR = 100_000;

export async function pgCapacity(settings: PgCapacitySettings): Promise<PgCapacityRow[]> {
  const partitionsMax = Math.max(...settings.concurrencies);
  const databaseUrl = databaseUrlNamed(settings.databaseUrl, `quanta_pgcap_${process.pid}`);
  const campaign = withStock(readCampaignFile(SEED_CAMPAIGN_PATH));
  await dropDatabase(databaseUrl);
  await migrate(databaseUrl, partitionsMax);
  await loadCampaign(databaseUrl, campaign, partitionsMax);
  const db = connect({
    connectionString: databaseUrl,
    poolMax: partitionsMax + 1,
    statementTimeoutMs: 60_000,
    applicationName: "quanta-pg-capacity",
  });
  const probe = new pg.Client({ connectionString: databaseUrl, application_name: "quanta-pg-capacity-probe" });
  await probe.connect();
  const rows: PgCapacityRow[] = [];
  try {
    const rounds = await CapacityRounds.open(db, campaign.id, partitionsMax);
    const wal = new WalProbe(probe);
    for (const roundSize of settings.roundSizes) {
      for (const partitions of settings.concurrencies) {
        const row = await measure(rounds, wal, roundSize, partitions, settings.seconds);
        rows.push(row);
        settings.out(rowLine(row));
      }
    }
    return rows;
  } finally {
    await probe.end();
    await db.close();
    await dropDatabase(databaseUrl).catch(() => undefined);
  }
}

/** The seed campaign with every quota and the budget multiplied by STOCK_FACTOR. */
function withStock(seed: Campaign): Campaign {
  return {
    ...seed,
    budgetFen: seed.budgetFen * STOCK_FACTOR,
    activities: seed.activities.map((a) => ({
      ...a,
      tiers: a.tiers.map((t) => ({ ...t, quota: t.quota * STOCK_FACTOR })),
    })),
  };
}

/** The WAL position, and the bytes between two positions, read on the probe's own connection. */
class WalProbe {
  constructor(private readonly probe: pg.Client) {}

  async lsn(): Promise<string> {
    return (await this.probe.query<{ l: string }>("select pg_current_wal_lsn()::text as l")).rows[0]!.l;
  }

  async bytes(from: string, to: string): Promise<number> {
    const diff = await this.probe.query<{ d: string }>("select pg_wal_lsn_diff($2, $1)::bigint as d", [from, to]);
    return Number(diff.rows[0]!.d);
  }
}

/** Rounds of roundSize back to back on each of `partitions` partitions for `seconds`, after a warm-up. */
async function measure(
  rounds: CapacityRounds,
  wal: WalProbe,
  roundSize: number,
  partitions: number,
  seconds: number,
): Promise<PgCapacityRow> {
  // Warm-up: a few rounds per partition, not measured (plans cached, shares refilled once).
  await Promise.all(Array.from({ length: partitions }, (_, p) => rounds.round(p, roundSize, () => undefined)));
  const roundMs: number[] = [];
  let commits = 0;
  let decided = 0;
  const walFrom = await wal.lsn();
  const cpuFrom = postgresCpuS();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: partitions }, async (_, p) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        await rounds.round(p, roundSize, (n) => {
          commits++;
          decided += n;
        });
        roundMs.push(performance.now() - t);
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  const walBytes = await wal.bytes(walFrom, await wal.lsn());
  const cpuS = postgresCpuS() - cpuFrom;
  const [p50, p99] = percentiles(roundMs, [50, 99]);
  return {
    roundSize,
    partitions,
    roundsPerS: roundMs.length / elapsedS,
    commitsPerS: commits / elapsedS,
    decisionsPerS: decided / elapsedS,
    walBytesPerS: walBytes / elapsedS,
    walBytesPerDecision: decided > 0 ? walBytes / decided : Number.NaN,
    pgCpuUsPerDecision: decided > 0 ? (cpuS * 1e6) / decided : Number.NaN,
    roundMs: { p50: p50 ?? Number.NaN, p99: p99 ?? Number.NaN },
  };
}

function rowLine(row: PgCapacityRow): string {
  return (
    `  rounds of ${row.roundSize}, ${row.partitions} partitions at once: ${Math.round(row.commitsPerS)} commits/s, ${Math.round(row.decisionsPerS).toLocaleString("en-US")} decisions/s, ` +
    `${(row.walBytesPerS / 2 ** 20).toFixed(1)} MiB WAL/s (${Math.round(row.walBytesPerDecision)} B/decision), Postgres CPU ${Math.round(row.pgCpuUsPerDecision)} µs/decision, round p50/p99 ${row.roundMs.p50.toFixed(1)}/${row.roundMs.p99.toFixed(1)} ms`
  );
}

export function pgCapacityText(rows: readonly PgCapacityRow[]): string {
  return table(
    [
      "round size",
      "partitions at once",
      "commits/s",
      "decisions/s",
      "WAL MiB/s",
      "WAL B/decision",
      "PG CPU µs/decision",
      "round p50 ms",
      "round p99 ms",
    ],
    rows.map((r) => [
      r.roundSize,
      r.partitions,
      Math.round(r.commitsPerS),
      Math.round(r.decisionsPerS).toLocaleString("en-US"),
      (r.walBytesPerS / 2 ** 20).toFixed(1),
      Math.round(r.walBytesPerDecision),
      Math.round(r.pgCpuUsPerDecision),
      r.roundMs.p50.toFixed(1),
      r.roundMs.p99.toFixed(1),
    ]),
  );
}

/** Writes the rows (and the settings) to bench/results/pg-capacity-<time>.json; returns its path. */
export function writePgCapacity(rows: readonly PgCapacityRow[], settings: Record<string, unknown>): string {
  const dir = new URL("../../../bench/results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`pg-capacity-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, dir);
  writeFileSync(
    file,
    `${JSON.stringify({ settings, machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB`, rows }, null, 2)}\n`,
  );
  return file.pathname;
}
