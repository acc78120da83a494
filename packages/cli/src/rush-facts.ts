import { execFileSync } from "node:child_process";
import { sql } from "kysely";
import { inversionWindowMs, settlement, tierReport, type connect, type TierReport } from "@quanta/db";
import { percentiles, type Scenario, type SentRecord } from "@quanta/loadtest";
import { rushSeries } from "./rush-series.js";
import { rushCounts, withSeparators } from "./rush-counts.js";
import { n, type Percentiles, type RushFacts } from "./rush-text.js";
import { settlementText } from "./settle.js";
import { invariantChecks } from "./rush-invariants.js";
import type { GetChecks } from "./rush-get-checks.js";
import type { RefundPhaseResult } from "./rush-refunds.js";
import type { Owners } from "./owners.js";
import type { DeploymentReport } from "./rush-deployment.js";
import type { RushSettings } from "./rush-settings.js";
import type { RushWorld } from "./rush-world.js";
import type { RushDrive } from "./rush-drive.js";
import type { AfterRush } from "./rush-after.js";

/**
 * The rush's facts: everything its report shows (counts, stock, latency, the invariants with
 * their evidence, settlement, the per-second series, the settings), read once from the run's
 * records and the database after the services stopped. Every view (text, JSON, HTML) renders
 * these and reads nothing else, so the views cannot disagree on a number.
 */
export interface FactsInput {
  db: ReturnType<typeof connect>;
  settings: RushSettings;
  scenario: Scenario;
  campaignId: string;
  records: SentRecord[];
  dropped: number;
  startedAtMs: number;
  endedAtMs: number;
  acked: { acquirerId: string; txnId: string }[];
  getChecks: GetChecks;
  acquirerId: string;
  /** Tiers as the rush left them, before any refund (their sell-out times). */
  rushTiers: TierReport[];
  refunds: RefundPhaseResult | undefined;
  /** Which worker owned which partitions when the load started. */
  owners: Owners;
  /** Deadlocks Postgres detected in the run's database. */
  deadlocks: number;
  /** Each process's share and CPU per attempt; the masters of a cluster. */
  deployment: DeploymentReport;
}

/** The facts of a run, from the steps' results. */
export function gatherFacts(world: RushWorld, drive: RushDrive, after: AfterRush, deadlocks: number) {
  const { run } = drive;
  return factsOf({
    db: world.db,
    settings: world.settings,
    scenario: world.scenario,
    campaignId: world.campaign.id,
    records: run.records,
    dropped: run.dropped,
    startedAtMs: run.startedAtMs,
    endedAtMs: run.endedAtMs,
    acked: drive.acked,
    getChecks: after.getChecks,
    acquirerId: world.acquirerId,
    rushTiers: after.rushTiers,
    refunds: after.refunds,
    owners: world.owners,
    deadlocks,
    deployment: drive.deployment,
  });
}

/** Everything the report shows, read once from the run's records and the database. */
async function factsOf(input: FactsInput): Promise<RushFacts> {
  const { db, records, campaignId } = input;
  const tiers = await tierReport(db.kysely, campaignId);
  const counts = rushCounts({
    records,
    dropped: input.dropped,
    decisions: await storedDecisions(db),
    tiers,
    refunds: input.refunds ?? null,
  });
  const invariants = (await invariantChecks(input)).map((c) => ({ ...c, detail: withSeparators(c.detail) }));
  const ok = invariants.every((c) => c.ok);
  const settled = await settlement(db.kysely, campaignId);
  const title = `quanta rush: ${input.scenario.name}, ${new Date(input.startedAtMs).toISOString()}`;
  const phase = input.refunds && { startedAtMs: input.refunds.startedAtMs, endedAtMs: input.refunds.endedAtMs };
  return {
    title,
    scenario: input.scenario,
    startedAt: new Date(input.startedAtMs).toISOString(),
    runS: (input.endedAtMs - input.startedAtMs) / 1000,
    dropped: input.dropped,
    acknowledged: counts.attempts.acknowledged,
    getChecks: { asked: input.getChecks.asked, mismatches: input.getChecks.mismatches.length },
    answers: counts.answers.byAnswer,
    counts,
    tiers,
    soldOutAt: Object.fromEntries(
      input.rushTiers.map((t) => [t.tierId, soldOutAt(t, input.startedAtMs)] as const).filter(([, v]) => v !== null),
    ) as Record<string, string>,
    ackMs: answerLatency(records),
    decisionMs: await decisionLatency(db),
    decidedSpanS: await decidedSpanS(db),
    inversionMs: await inversionWindowMs(db.kysely, campaignId),
    owners: input.owners,
    deployment: input.deployment.json,
    deploymentLines: input.deployment.lines,
    deadlocks: input.deadlocks,
    refunds: input.refunds ?? null,
    settlement: { ...settled, rows: settled.rows.length } as RushFacts["settlement"],
    settlementText: settlementText(settled),
    invariants,
    ok,
    settings: runSettings(input),
    series: await rushSeries(db.kysely, records, input.startedAtMs, campaignId, phase ?? null),
  };
}

/** Stored decisions by status and reason, and how many of each a worker took (the rest the ingress decided at once). */
async function storedDecisions(db: ReturnType<typeof connect>) {
  const rows = await sql<{ status: string; reason: string | null; n: string; by_worker: string }>`
    select status, reason, count(*) as n, count(*) filter (where decided_by = 'worker') as by_worker
      from attempts group by status, reason`.execute(db.kysely);
  return rows.rows.map((r) => ({ status: r.status, reason: r.reason, n: Number(r.n), byWorker: Number(r.by_worker) }));
}

function answerLatency(records: readonly SentRecord[]): Percentiles {
  const acked = records.filter((r) => r.status === 200 || r.status === 202).map((r) => r.ackMs);
  if (acked.length === 0) return { p50: null, p90: null, p99: null, p999: null, max: null };
  const [p50, p90, p99, p999, max] = percentiles(acked, [50, 90, 99, 99.9, 100]);
  return { p50: p50!, p90: p90!, p99: p99!, p999: p999!, max: max! };
}

/** Received to committed, for the attempts a worker decided (those the ingress queued). */
async function decisionLatency(db: ReturnType<typeof connect>): Promise<Percentiles> {
  const rows = await sql<Record<keyof Percentiles, number | null>>`
    select percentile_cont(0.5) within group (order by ms) as p50, percentile_cont(0.9) within group (order by ms) as p90,
           percentile_cont(0.99) within group (order by ms) as p99, percentile_cont(0.999) within group (order by ms) as p999,
           max(ms) as max
      from (select extract(epoch from decided_at - received_at) * 1000 as ms from attempts where decided_by = 'worker') d`.execute(
    db.kysely,
  );
  const d = rows.rows[0]!;
  const num = (v: number | null) => (v === null ? null : Number(v));
  return { p50: num(d.p50), p90: num(d.p90), p99: num(d.p99), p999: num(d.p999), max: num(d.max) };
}

async function decidedSpanS(db: ReturnType<typeof connect>): Promise<number> {
  const tp = (
    await sql<{ first: Date | null; last: Date | null }>`
      select min(decided_at) as first, max(decided_at) as last from attempts`.execute(db.kysely)
  ).rows[0]!;
  return tp.first && tp.last ? (new Date(tp.last).getTime() - new Date(tp.first).getTime()) / 1000 : 0;
}

function runSettings(input: FactsInput): [string, string][] {
  const s = input.scenario;
  return [
    ["scenario", s.name],
    ["peak rate", `${n(s.arrival.peakRatePerS)}/s`],
    ["duration", `${n(s.durationS)} s`],
    ["payers", n(s.payers)],
    ["ingresses", n(new Set(input.records.map((r) => r.ingress)).size)],
    ["workers", n(input.owners.length)],
    ["refund share", input.settings.refundShare ? String(input.settings.refundShare) : "none"],
    ["seed", String(input.settings.seed)],
    ["commit", commitOf()],
  ];
}

/** The checkout's commit, for the report's settings ("unknown" outside a git checkout). */
function commitOf(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: new URL(".", import.meta.url),
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

function soldOutAt(t: TierReport, startedAtMs: number): string | null {
  return t.remaining === 0 && t.lastGrantAt
    ? `+${((new Date(t.lastGrantAt).getTime() - startedAtMs) / 1000).toFixed(2)} s`
    : null;
}
