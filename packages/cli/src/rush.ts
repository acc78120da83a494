import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import {
  checkAcknowledged,
  connect,
  deadlocksOnceQuiet,
  dropDatabase,
  findAttempts,
  inversionWindowMs,
  rowDecision,
  settlement,
  tierReport,
  verifyDatabaseInvariants,
  waitUntilDecided,
  type InvariantCheck,
  type TierReport,
} from "@quanta/db";
import { decisionBody } from "@quanta/contract";
import {
  CallbackClient,
  countBy,
  loadScenario,
  percentiles,
  runRush,
  type Scenario,
  type SentRecord,
} from "@quanta/loadtest";
import { SEED_CAMPAIGN_PATH, loadCampaign, migrate, readCampaignFile } from "./setup.js";
import { serviceEnv, startQuanta, stopService, type ServiceProcess } from "./stack.js";
import { deletePrefix } from "./redis-cleanup.js";
import { rushPage } from "./rush-html.js";
import { rushSeries } from "./rush-series.js";
import { rushCounts, withSeparators } from "./rush-counts.js";
import { rushText, type Percentiles, type RushFacts } from "./rush-text.js";
import { refundPhase, type RefundPhaseResult } from "./rush-refunds.js";
import { settlementText } from "./settle.js";
import { answersAgainstStore, copiesAgainstFirst } from "./answer-checks.js";
import type { Owners } from "./owners.js";
import { PrivateRedisCluster } from "./redis-cluster.js";
import { cpuSnapshot, deploymentReport, type DeploymentReport } from "./rush-deployment.js";

/**
 * `quanta rush`: the opening minute of 2020-09-13 on this machine.
 * A private database (quanta_rush, recreated) and a private Redis prefix, the
 * seed campaign, one ingress and N worker processes, the scenario replayed
 * open-model, then the report and every invariant checked. Exit code 1 when
 * an invariant fails. Everything started here is stopped here.
 */
export interface RushSettings {
  databaseUrl: string;
  redisUrl: string;
  scenarioPath?: string;
  campaignPath?: string;
  workers: number;
  /** Ingress processes; the driver spreads callbacks over them round robin (default 1). */
  ingresses?: number;
  /** Run on a private Redis Cluster (3 masters, one replica each, AOF always) instead of redisUrl. */
  redisCluster?: boolean;
  partitions: number;
  peakRatePerS?: number;
  durationS?: number;
  payers?: number;
  seed: number;
  drainTimeoutS: number;
  getChecksMax: number;
  keepDatabase: boolean;
  /** Database created (and by default dropped) for the run, on DATABASE_URL's server. */
  databaseName?: string;
  /** Redis prefix of the run (removed afterwards). */
  prefix?: string;
  /** In-flight callbacks the driver allows before it drops arrivals. */
  maxInFlight?: number;
  /** Share of granted payments refunded after the rush (0: no refund phase). */
  refundShare?: number;
  out: (line: string) => void;
}

export interface RushReport {
  ok: boolean;
  text: string;
  json: Record<string, unknown>;
  /** The same report with charts over the run, as one self-contained HTML page. */
  html: string;
}

export function rushDatabaseUrl(databaseUrl: string, name = "quanta_rush"): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function rush(settings: RushSettings): Promise<RushReport> {
  return rushWith(settings, (s) => s);
}

/** As rush(), with the scenario adjusted in code (tests shape the load without a file). */
export async function rushWith(settings: RushSettings, shape: (s: Scenario) => Scenario): Promise<RushReport> {
  const out = settings.out;
  const scenario = shape(applyOverrides(loadScenario(settings.scenarioPath), settings));
  const campaign = readCampaignFile(settings.campaignPath ?? SEED_CAMPAIGN_PATH);
  const databaseUrl = rushDatabaseUrl(settings.databaseUrl, settings.databaseName);
  const prefix = settings.prefix ?? `quanta-rush-${process.pid}`;
  const acquirerId = "rush-acquirer";
  const secret = randomBytes(24).toString("hex");
  const runId = `r${Date.now().toString(36)}`;

  const ingressCount = settings.ingresses ?? 1;
  out(`quanta rush: ${scenario.name}`);
  out(
    `  database ${redactUrl(databaseUrl)} (recreated), redis prefix ${prefix}, ${settings.partitions} partitions, ${ingressCount} ingresses, ${settings.workers} workers`,
  );
  out(
    `  offered load: peak ${scenario.arrival.peakRatePerS}/s over ${scenario.durationS} s, ${scenario.payers.toLocaleString("en-US")} payers`,
  );

  await dropDatabase(databaseUrl);
  await migrate(databaseUrl, settings.partitions);
  await loadCampaign(databaseUrl, campaign, settings.partitions);
  out(
    `  campaign ${campaign.id} loaded: ${campaign.activities
      .flatMap((a) => a.tiers)
      .reduce((n, t) => n + t.quota, 0)
      .toLocaleString("en-US")} vouchers`,
  );

  const cluster = settings.redisCluster ? await PrivateRedisCluster.start() : undefined;
  const redisUrl = cluster?.url ?? settings.redisUrl;
  if (cluster)
    out(`  Redis Cluster: ${cluster.masters} masters, ${cluster.replicas} replica each, AOF always (${redisUrl})`);
  const env = serviceEnv({
    databaseUrl,
    redisUrl,
    prefix,
    acquirerSecrets: `${acquirerId}=${secret}`,
    partitions: settings.partitions,
  });
  const services: ServiceProcess[] = [];
  const db = connect({
    connectionString: databaseUrl,
    poolMax: 4,
    statementTimeoutMs: 120_000,
    applicationName: "quanta-rush",
  });
  try {
    // The opening minute starts on a settled deployment: every partition with its worker.
    const { ingresses, baseUrl, baseUrls, owners } = await startQuanta(env, {
      ingresses: ingressCount,
      workers: settings.workers,
      partitions: settings.partitions,
      services,
      stdio: "inherit",
    });
    out(`  ${ingresses.map((s, i) => `ingress on ${baseUrls[i]} (pid ${s.child.pid})`).join("; ")}`);
    out(`  ${owners.map((o) => `worker pid ${o.pid} owns partitions ${o.partitions.join(", ")}`).join("; ")}`);
    if (ingressCount > 1)
      out(
        "  callbacks go round robin over the ingresses, as a load balancer spreads them; a resend goes to another ingress than its first copy",
      );
    out("");

    const cpuBefore = cpuSnapshot(services);
    const run = await runRush({
      baseUrl,
      moreBaseUrls: baseUrls.slice(1),
      acquirerId,
      secret,
      scenario,
      seed: settings.seed,
      runId,
      connections: 256,
      maxInFlight: settings.maxInFlight ?? 20_000,
      progressEveryMs: 2_000,
      onProgress: (p) =>
        out(
          `  t=${p.elapsedS.toFixed(0).padStart(3)}s offered ${Math.round(p.offeredRatePerS).toString().padStart(5)}/s  sent ${p.sent.toLocaleString("en-US").padStart(7)}  answered ${p.answered.toLocaleString("en-US").padStart(7)}  in flight ${String(p.inFlight).padStart(5)}  dropped ${p.dropped}  ${Object.entries(
            p.byStatus,
          )
            .map(([s, n]) => `${s}:${n}`)
            .join(" ")}`,
        ),
    });
    out(`  load done in ${((run.endedAtMs - run.startedAtMs) / 1000).toFixed(1)} s; waiting for the backlog to drain`);

    const acked = uniqueKeys(
      run.records.filter((r) => r.kind !== "forged" && (r.status === 200 || r.status === 202)),
      acquirerId,
    );
    // What is still undecided after the wait is reported by the I3 check below.
    await waitUntilDecided(db.kysely, acked, {
      timeoutMs: settings.drainTimeoutS * 1000,
      pollMs: 1_000,
      onWait: (n) => out(`  ${n.toLocaleString("en-US")} acknowledged attempts not decided yet`),
    });

    // Every process's CPU once the backlog drained: what the rush cost, before the checks and refunds add theirs.
    const cpuAfter = cpuSnapshot(services);
    const deployment = await deploymentReport(db.kysely, {
      ingresses,
      owners,
      records: run.records,
      before: cpuBefore,
      after: cpuAfter,
      prefix,
      partitions: settings.partitions,
      cluster,
    });
    const client = new CallbackClient(baseUrl, acquirerId, secret, 32);
    let getChecks;
    let refunds: RefundPhaseResult | undefined;
    let rushTiers: TierReport[];
    try {
      getChecks = await checkThroughGet(client, db, acquirerId, run.records, settings.getChecksMax);
      rushTiers = await tierReport(db.kysely, campaign.id);
      if ((settings.refundShare ?? 0) > 0) {
        out("");
        out("  after the rush: refunds, then new payers claim the returned vouchers");
        refunds = await refundPhase(client, db, acquirerId, campaign.id, settings.refundShare!, settings.seed, out);
      }
    } finally {
      await client.close();
    }
    // A Postgres backend publishes its counters when it exits: stop the services, then count deadlocks.
    await Promise.all(services.map((s) => stopService(s)));
    const deadlocks = await deadlocksOnceQuiet(db.kysely, ["quanta-rush"]);
    return await report({
      db,
      settings,
      scenario,
      campaignId: campaign.id,
      records: run.records,
      dropped: run.dropped,
      startedAtMs: run.startedAtMs,
      endedAtMs: run.endedAtMs,
      acked,
      getChecks,
      acquirerId,
      databaseUrl,
      rushTiers,
      refunds,
      owners,
      deadlocks,
      deployment,
    });
  } finally {
    await Promise.all(services.map((s) => stopService(s)));
    await db.close();
    if (cluster) await cluster.stop();
    else await deletePrefix(settings.redisUrl, prefix).catch(() => 0);
    if (!settings.keepDatabase) await dropDatabase(databaseUrl).catch(() => undefined);
  }
}

function applyOverrides(s: Scenario, settings: RushSettings): Scenario {
  return {
    ...s,
    durationS: settings.durationS ?? s.durationS,
    payers: settings.payers ?? s.payers,
    arrival: { ...s.arrival, peakRatePerS: settings.peakRatePerS ?? s.arrival.peakRatePerS },
  };
}

function uniqueKeys(records: readonly SentRecord[], acquirerId: string) {
  const seen = new Set<string>();
  const keys: { acquirerId: string; txnId: string }[] = [];
  for (const r of records) {
    if (seen.has(r.txnId)) continue;
    seen.add(r.txnId);
    keys.push({ acquirerId, txnId: r.txnId });
  }
  return keys;
}

interface GetChecks {
  asked: number;
  mismatches: string[];
}

/**
 * I4 seen from outside: every 200 answer for a txn is the same, equals the
 * stored decision, and GET returns it too (all 202-answered txns, all txns
 * sent more than once, then a sample up to getChecksMax).
 */
async function checkThroughGet(
  client: CallbackClient,
  db: ReturnType<typeof connect>,
  acquirerId: string,
  records: readonly SentRecord[],
  getChecksMax: number,
): Promise<GetChecks> {
  const accepted = records.filter(
    (r) => r.kind !== "forged" && r.kind !== "conflict" && (r.status === 200 || r.status === 202),
  );
  const rows = await findAttempts(
    db.kysely,
    [...new Set(accepted.map((r) => r.txnId))].map((txnId) => ({ acquirerId, txnId })),
  );
  const stored = new Map(rows.map((row) => [row.txn_id, JSON.stringify(decisionBody(row.txn_id, rowDecision(row)))]));
  const mismatches: string[] = [];
  for (const r of accepted) {
    if (r.status !== 200) continue;
    const expected = stored.get(r.txnId);
    if (JSON.stringify(r.answer) !== expected)
      mismatches.push(`${r.txnId}: answered ${JSON.stringify(r.answer)}, stored ${expected}`);
  }
  const counts = countBy(accepted, (r) => r.txnId);
  const toAsk = new Set<string>();
  for (const r of accepted) if (r.status === 202 || (counts.get(r.txnId) ?? 0) > 1) toAsk.add(r.txnId);
  for (const r of accepted) {
    if (toAsk.size >= getChecksMax) break;
    toAsk.add(r.txnId);
  }
  const list = [...toAsk].slice(0, Math.max(getChecksMax, 0) || toAsk.size);
  for (let i = 0; i < list.length; i += 64) {
    await Promise.all(
      list.slice(i, i + 64).map(async (txnId) => {
        const answer = await client.getAttempt(txnId);
        const expected = stored.get(txnId);
        if (answer.status !== 200 || JSON.stringify(answer.body) !== expected) {
          mismatches.push(`GET ${txnId}: ${answer.status} ${JSON.stringify(answer.body)}, stored ${expected}`);
        }
      }),
    );
  }
  return { asked: list.length, mismatches };
}

interface ReportInput {
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
  databaseUrl: string;
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

async function report(input: ReportInput): Promise<RushReport> {
  const facts = await gatherFacts(input);
  const text = rushText(facts);
  return { ok: facts.ok, text, json: { ...facts }, html: rushPage(facts, text) };
}

/** Everything the report shows, read once from the run's records and the database. */
async function gatherFacts(input: ReportInput): Promise<RushFacts> {
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

type Check = Omit<InvariantCheck, "id"> & { id: InvariantCheck["id"] | "deadlocks" };

/** The database's invariants, the refund phase, I3, I4 and I5 from the answers, then deadlocks. */
async function invariantChecks(input: ReportInput): Promise<Check[]> {
  const checks: Check[] = await verifyDatabaseInvariants(input.db.kysely, input.campaignId);
  if (input.refunds) checks.push(refundPhaseCheck(input.refunds));
  // Counted after the drain (waitUntilDecided only waited for each to exist): none missing, none twice.
  checks.push(await checkAcknowledged(input.db.kysely, input.acked));
  checks.push(await sameAnswerCheck(input));
  checks.push(await forgedCheck(input));
  checks.sort((a, b) => a.id.localeCompare(b.id));
  // Not an invariant, but the lock order's promise: rounds, refills and refunds never wait in a cycle.
  checks.push({
    id: "deadlocks",
    ok: input.deadlocks === 0,
    detail: `${input.deadlocks} deadlocks detected by Postgres in the run's database (${input.owners.length} workers: ${input.owners.map((o) => `[${o.partitions.join(",")}]`).join(" ")})`,
  });
  return checks;
}

function refundPhaseCheck(r: RefundPhaseResult): Check {
  return {
    id: "refund-phase",
    ok: r.problems.length === 0,
    detail:
      r.problems.length === 0
        ? "every refund answered as expected and the same on retry; every returned voucher granted again"
        : `${r.problems.length} problems, e.g. ${r.problems.slice(0, 3).join("; ")}`,
  };
}

/** I4: every answer against the stored decision (a 200 equals it, a resend got it, another body 409) and GET. */
async function sameAnswerCheck(input: ReportInput): Promise<Check> {
  const { records, getChecks } = input;
  const sentTxns = [...new Set(records.map((r) => r.txnId))].map((txnId) => ({ acquirerId: input.acquirerId, txnId }));
  const copies = copiesAgainstFirst(records);
  const disagreeing = [...answersAgainstStore(records, await findAttempts(input.db.kysely, sentTxns)), ...copies.wrong];
  // Evidence, not just the absence of counter-examples: a run that sent resends and other bodies
  // must have seen resends answered and other bodies refused 409.
  const evidenceMissing = [
    ...(records.some((r) => r.kind === "resend") && copies.resendsAnswered === 0 ? ["no resend was answered 200"] : []),
    ...(records.some((r) => r.kind === "conflict") && copies.conflicts409 === 0
      ? ["no other body was answered 409"]
      : []),
  ];
  const sample = (xs: string[]) => (xs.length ? ` (${xs.slice(0, 2).join("; ")})` : "");
  return {
    id: "I4",
    ok: disagreeing.length === 0 && evidenceMissing.length === 0 && getChecks.mismatches.length === 0,
    detail:
      `every answer against the stored decision and against the txn's first answer (${n(copies.resendsAnswered)} resends answered as the first time, ${n(copies.conflicts409)} other bodies answered 409): ` +
      `${disagreeing.length} disagree${sample(disagreeing)}; ` +
      `${evidenceMissing.length ? `${evidenceMissing.join(", ")}; ` : ""}` +
      `${n(getChecks.asked)} GETs: ${getChecks.mismatches.length} mismatches${sample(getChecks.mismatches)}`,
  };
}

/** I5: no forged callback accepted or stored. */
async function forgedCheck(input: ReportInput): Promise<Check> {
  const forged = input.records.filter((r) => r.kind === "forged");
  const accepted = forged.filter((r) => r.status !== 401);
  const stored = await findAttempts(
    input.db.kysely,
    forged.map((r) => ({ acquirerId: input.acquirerId, txnId: r.txnId })),
  );
  return {
    id: "I5",
    ok: accepted.length === 0 && stored.length === 0,
    detail: `${n(forged.length)} forged callbacks: ${n(forged.length - accepted.length)} answered 401, ${stored.length} stored`,
  };
}

function runSettings(input: ReportInput): [string, string][] {
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

const n = (v: number) => v.toLocaleString("en-US");

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

/** Writes the JSON and the HTML report under rush-results/; returns both paths. */
export function writeRushResult(report: Pick<RushReport, "json" | "html">): { json: string; html: string } {
  const dir = new URL("../../../rush-results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const stamp = `rush-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  const json = new URL(`${stamp}.json`, dir);
  const html = new URL(`${stamp}.html`, dir);
  writeFileSync(json, `${JSON.stringify(report.json, null, 2)}\n`);
  writeFileSync(html, report.html);
  return { json: json.pathname, html: html.pathname };
}

function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}
