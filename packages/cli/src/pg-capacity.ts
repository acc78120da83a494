import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import pg from "pg";
import { partitionOf, type Campaign, type QueuedAttempt } from "@quanta/domain";
import {
  CampaignCache,
  DEFAULT_RETRY,
  claimPartition,
  connect,
  decideRounds,
  dropDatabase,
  type PartitionBatch,
} from "@quanta/db";
import { percentiles, table } from "@quanta/loadtest";
import { postgresCpuS } from "./bench-probes.js";
import { SEED_CAMPAIGN_PATH, loadCampaign, migrate, readCampaignFile } from "./setup.js";
import { rushDatabaseUrl } from "./rush.js";

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
  const databaseUrl = rushDatabaseUrl(settings.databaseUrl, `quanta_pgcap_${process.pid}`);
  const seed = readCampaignFile(SEED_CAMPAIGN_PATH);
  const campaign: Campaign = {
    ...seed,
    budgetFen: seed.budgetFen * STOCK_FACTOR,
    activities: seed.activities.map((a) => ({
      ...a,
      tiers: a.tiers.map((t) => ({ ...t, quota: t.quota * STOCK_FACTOR })),
    })),
  };
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
    const cache = new CampaignCache(db.kysely, () => undefined, 60_000);
    await cache.refresh();
    const epochs: number[] = [];
    for (let p = 0; p < partitionsMax; p++) epochs.push(await claimPartition(db.kysely, p, "pg-capacity"));
    let serial = 0;
    const attemptIn = (partition: number): QueuedAttempt => {
      const txnId = `c${(serial++).toString(36)}${randomBytes(2).toString("hex")}`;
      for (let i = 0; ; i++) {
        const payerId = `${txnId}p${i}`;
        if (partitionOf(payerId, partitionsMax) !== partition) continue;
        return {
          acquirerId: "acq-capacity",
          bodyHash: `h${txnId}`,
          payment: {
            txnId,
            payerId,
            merchantId: "M-0001",
            amountFen: 250_000,
            paidAtMs: Date.parse("2020-09-13T10:00:00+08:00"),
          },
          receivedAtMs: Date.now(),
          partition,
          request: {
            campaignId: campaign.id,
            activityId: "A2",
            tierIds: ["A2-400", "A2-200", "A2-100", "A2-50", "A2-20"],
          },
        };
      }
    };
    const lsn = async () => (await probe.query<{ l: string }>("select pg_current_wal_lsn()::text as l")).rows[0]!.l;
    const walDiff = async (from: string, to: string) =>
      Number((await probe.query<{ d: string }>("select pg_wal_lsn_diff($2, $1)::bigint as d", [from, to])).rows[0]!.d);

    for (const roundSize of settings.roundSizes) {
      for (const partitions of settings.concurrencies) {
        // Warm-up: a few rounds per partition, not measured (plans cached, shares refilled once).
        await Promise.all(Array.from({ length: partitions }, (_, p) => round(p, roundSize, () => undefined)));
        const roundMs: number[] = [];
        let commits = 0;
        let decided = 0;
        let rounds = 0;
        const walFrom = await lsn();
        const cpuFrom = postgresCpuS();
        const started = performance.now();
        const deadline = started + settings.seconds * 1000;
        await Promise.all(
          Array.from({ length: partitions }, async (_, p) => {
            while (performance.now() < deadline) {
              const t = performance.now();
              await round(p, roundSize, (n) => {
                commits++;
                decided += n;
              });
              rounds++;
              roundMs.push(performance.now() - t);
            }
          }),
        );
        const elapsedS = (performance.now() - started) / 1000;
        const wal = await walDiff(walFrom, await lsn());
        const cpuS = postgresCpuS() - cpuFrom;
        const [p50, p99] = percentiles(roundMs, [50, 99]);
        const row: PgCapacityRow = {
          roundSize,
          partitions,
          roundsPerS: rounds / elapsedS,
          commitsPerS: commits / elapsedS,
          decisionsPerS: decided / elapsedS,
          walBytesPerS: wal / elapsedS,
          walBytesPerDecision: decided > 0 ? wal / decided : Number.NaN,
          pgCpuUsPerDecision: decided > 0 ? (cpuS * 1e6) / decided : Number.NaN,
          roundMs: { p50: p50 ?? Number.NaN, p99: p99 ?? Number.NaN },
        };
        rows.push(row);
        settings.out(
          `  rounds of ${roundSize}, ${partitions} partitions at once: ${Math.round(row.commitsPerS)} commits/s, ${Math.round(row.decisionsPerS).toLocaleString("en-US")} decisions/s, ` +
            `${(row.walBytesPerS / 2 ** 20).toFixed(1)} MiB WAL/s (${Math.round(row.walBytesPerDecision)} B/decision), Postgres CPU ${Math.round(row.pgCpuUsPerDecision)} µs/decision, round p50/p99 ${row.roundMs.p50.toFixed(1)}/${row.roundMs.p99.toFixed(1)} ms`,
        );
      }
    }
    return rows;

    async function round(partition: number, size: number, committed: (n: number) => void): Promise<void> {
      const batch: PartitionBatch = {
        partition,
        epoch: epochs[partition]!,
        attempts: Array.from({ length: size }, () => attemptIn(partition)),
      };
      await decideRounds(db.pool, [batch], cache.byId(), partitionsMax, {
        retry: DEFAULT_RETRY,
        onCommit: (results) => committed(results.length),
        // A refill in its own transaction is a commit that decides nothing.
        onRefill: (_move, ms) => ms > 0 && committed(0),
      });
    }
  } finally {
    await probe.end();
    await db.close();
    await dropDatabase(databaseUrl).catch(() => undefined);
  }
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
