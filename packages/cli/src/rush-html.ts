import { sql, type Kysely } from "kysely";
import type { Database } from "@quanta/db";
import { percentiles, type SentRecord } from "@quanta/loadtest";
import { COUNT_LABELS, OUTCOME_NOTE, outcomeRows, refundRows, type Cell, type TierCount } from "./rush-counts.js";
import { acknowledgingAnswers, ms, n, type Percentiles, type RushFacts } from "./rush-text.js";

/**
 * The rush as pictures: a self-contained HTML page (inline SVG, no script,
 * no network) that operators and engineers can share after a rehearsal.
 * Every series is per second of the run, rebuilt afterwards from what the
 * load generator saw (answers, answer latency) and what Postgres stored
 * (decision latency, grants per tier, attempts queued and not yet decided,
 * from each attempt's received and decided instants): nothing has to be
 * sampled while the load runs.
 */
export interface RushSeries {
  seconds: number[];
  answersByOutcome: Record<string, number[]>;
  ackMs: { p50: (number | null)[]; p99: (number | null)[] };
  decisionMs: { p50: (number | null)[]; p99: (number | null)[] };
  remainingByTier: Record<string, number[]>;
  queued: number[];
  /** The refund phase (refunds, then new payers claiming the returned vouchers), in seconds of the run. */
  refundPhase: { fromS: number; toS: number } | null;
}

/** An answer's series: granted, rejected by reason, pending (202), an expected refusal (401 forged, 409 another body), or an error. */
const OUTCOME_OF = (r: SentRecord): string => {
  if (r.status === 200) {
    const a = r.answer as { status?: string; reason?: string } | undefined;
    return a?.status === "rejected" ? `rejected: ${a.reason ?? "?"}` : (a?.status ?? "granted");
  }
  if (r.status === 202) return "pending";
  if (r.status === 401 || r.status === 409) return `${r.status} (expected)`;
  return "error";
};

/** Vouchers left in a tier each second: quota minus those held (granted, less returned by refunds). Never below zero while I1 holds. */
export function remainingSeries(quota: number, grantsBy: readonly number[], returnsBy: readonly number[]): number[] {
  let held = 0;
  return grantsBy.map((g, i) => {
    held += g - (returnsBy[i] ?? 0);
    return quota - held;
  });
}

interface StoredRow {
  r: number;
  d: number;
  v: number | null;
  status: string;
  tier_id: string | null;
  decided_by: string;
}

export async function rushSeries(
  db: Kysely<Database>,
  records: readonly SentRecord[],
  startedAtMs: number,
  campaignId: string,
  refundPhase: { startedAtMs: number; endedAtMs: number } | null = null,
): Promise<RushSeries> {
  const { rows, tiers } = await storedInstants(db, campaignId);
  let lastMs = Math.max(startedAtMs, refundPhase?.endedAtMs ?? 0);
  for (const r of records) lastMs = Math.max(lastMs, r.sentAtMs + r.ackMs);
  for (const x of rows) lastMs = Math.max(lastMs, x.d, x.v ?? 0);
  const n = Math.max(1, Math.ceil((lastMs - startedAtMs) / 1000) + 1);
  const seconds = Array.from({ length: n }, (_, i) => i);
  const bucket = (ms: number) => Math.min(n - 1, Math.max(0, Math.floor((ms - startedAtMs) / 1000)));
  const answers = answerSeries(records, n, bucket);
  const stored = storedSeries(rows, tiers, n, bucket);
  return {
    seconds,
    ...answers,
    ...stored,
    refundPhase: refundPhase && { fromS: bucket(refundPhase.startedAtMs), toS: bucket(refundPhase.endedAtMs) },
  };
}

/** Each attempt's received, decided and returned instants (ms), and the campaign's tiers in order. */
async function storedInstants(db: Kysely<Database>, campaignId: string) {
  const rows: StoredRow[] = (
    await sql<StoredRow>`
      select extract(epoch from received_at) * 1000 as r, extract(epoch from decided_at) * 1000 as d,
             extract(epoch from voucher_returned_at) * 1000 as v, status, tier_id, decided_by
        from attempts where campaign_id = ${campaignId} or campaign_id is null`.execute(db)
  ).rows.map((x) => ({ ...x, r: Number(x.r), d: Number(x.d), v: x.v === null ? null : Number(x.v) }));
  const tiers = (
    await sql<{
      id: string;
      quota: number;
    }>`select id, quota from tiers where campaign_id = ${campaignId} order by activity_id, threshold_fen`.execute(db)
  ).rows;
  return { rows, tiers };
}

const pct = (xs: number[], p: number) => (xs.length === 0 ? null : percentiles(xs, [p])[0]!);

/** What the load generator saw each second: answers by outcome, and the latency of those that acknowledged. */
function answerSeries(records: readonly SentRecord[], n: number, bucket: (ms: number) => number) {
  const answersByOutcome: Record<string, number[]> = {};
  const ackBy: number[][] = Array.from({ length: n }, () => []);
  for (const r of records) {
    const i = bucket(r.sentAtMs + r.ackMs);
    (answersByOutcome[OUTCOME_OF(r)] ??= new Array<number>(n).fill(0))[i]! += 1;
    if (r.status === 200 || r.status === 202) ackBy[i]!.push(r.ackMs);
  }
  return { answersByOutcome, ackMs: { p50: ackBy.map((xs) => pct(xs, 50)), p99: ackBy.map((xs) => pct(xs, 99)) } };
}

/** What Postgres stored, each second: decision latency, stock per tier, attempts queued. */
function storedSeries(
  rows: readonly StoredRow[],
  tiers: readonly { id: string; quota: number }[],
  n: number,
  bucket: (ms: number) => number,
) {
  const zeros = () => new Array<number>(n).fill(0);
  const decisionBy: number[][] = Array.from({ length: n }, () => []);
  const grantsBy: Record<string, number[]> = Object.fromEntries(tiers.map((t) => [t.id, zeros()]));
  const returnsBy: Record<string, number[]> = Object.fromEntries(tiers.map((t) => [t.id, zeros()]));
  const queuedDelta = new Array<number>(n + 1).fill(0);
  for (const x of rows) {
    if (x.decided_by === "worker") {
      decisionBy[bucket(x.d)]!.push(x.d - x.r);
      // Queued from its second of arrival until the second it was decided.
      queuedDelta[bucket(x.r)]! += 1;
      queuedDelta[bucket(x.d)]! -= 1;
    }
    if (x.status === "granted" && x.tier_id && grantsBy[x.tier_id]) {
      grantsBy[x.tier_id]![bucket(x.d)]! += 1;
      if (x.v !== null) returnsBy[x.tier_id]![bucket(x.v)]! += 1;
    }
  }
  const remainingByTier: Record<string, number[]> = {};
  for (const t of tiers)
    remainingByTier[`${t.id} (quota ${t.quota.toLocaleString("en-US")})`] = remainingSeries(
      t.quota,
      grantsBy[t.id]!,
      returnsBy[t.id]!,
    );
  let queued = 0;
  return {
    decisionMs: { p50: decisionBy.map((xs) => pct(xs, 50)), p99: decisionBy.map((xs) => pct(xs, 99)) },
    remainingByTier,
    queued: queuedDelta.slice(0, n).map((d) => (queued += d)),
  };
}

/** Series colours: no red (errors) and no green (granted), which keep one meaning on every chart. */
const PALETTE = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#8c6d31"];
/** Fixed colours where a series name means the same on every page. */
const NAMED_COLOURS: Record<string, string> = {
  granted: "#2ca02c",
  pending: "#ff7f0e",
  error: "#d62728",
  "rejected: sold_out": "#7f7f7f",
  p50: "#1f77b4",
  p99: "#9467bd",
};
const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** Ticks at 1, 2 or 5 times a power of ten, about `count` of them from 0 to at least `max`. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Log-scale ticks at 1, 2 and 5 times each power of ten within [lo, hi]. */
export function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  return ticks;
}

const tickLabel = (v: number) =>
  Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 3 });

export interface ChartOptions {
  /** A log axis (for latencies); `range` shares one axis between charts. */
  log?: boolean;
  range?: readonly [lo: number, hi: number];
  /** Whole units (counts): no fractional ticks. */
  integer?: boolean;
  /** Spans of the run shaded and labelled (seconds), with their legend entry. */
  phases?: readonly { fromS: number; toS: number; label: string; legend: string }[];
}

/** The [lo, hi] of a log axis that holds every positive value of the given series. */
export function logRange(...all: Record<string, readonly (number | null)[]>[]): [number, number] {
  const positive = all.flatMap((series) =>
    Object.values(series).flatMap((xs) => xs.filter((v): v is number => v !== null && Number.isFinite(v) && v > 0)),
  );
  if (positive.length === 0) return [1, 10];
  const lo = 10 ** Math.floor(Math.log10(Math.min(...positive)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...positive) * 1.05));
  return [lo, Math.max(hi, lo * 10)];
}

/** One line chart: x = seconds of the run, any number of named series (null = no data that second), optional shaded phases. */
export function lineChartSvg(
  title: string,
  unit: string,
  series: Record<string, readonly (number | null)[]>,
  options: ChartOptions = {},
): string {
  const names = Object.keys(series);
  const [W, H, L, R, T, B] = [560, 280, 62, 14, 22, 42];
  const len = Math.max(1, ...names.map((k) => series[k]!.length));
  const values = names.flatMap((k) => series[k]!.filter((v): v is number => v !== null && Number.isFinite(v)));
  const log = options.log === true;
  const [lo, hi] = log ? (options.range ?? logRange(series)) : [0, 0];
  let ticks = log ? logTicks(lo, hi) : niceTicks(Math.max(1, ...values));
  if (options.integer) ticks = ticks.filter((v) => Number.isInteger(v));
  const top = log ? hi : ticks.at(-1)!;
  const x = (i: number) => L + ((W - L - R) * i) / Math.max(1, len - 1);
  const y = (v: number) =>
    log
      ? T +
        (H - T - B) *
          (1 - (Math.log10(Math.min(Math.max(v, lo), hi)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)))
      : T + (H - T - B) * (1 - v / top);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" font-family="sans-serif" font-size="15" role="img" aria-label="${escapeHtml(title)}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  for (const p of options.phases ?? []) {
    const [x0, x1] = [x(p.fromS), Math.max(x(p.toS), x(p.fromS) + 3)];
    parts.push(
      `<rect class="phase" x="${x0.toFixed(1)}" y="${T}" width="${(x1 - x0).toFixed(1)}" height="${H - T - B}" fill="${PHASE_FILL}"/>`,
      `<line x1="${x0.toFixed(1)}" x2="${x0.toFixed(1)}" y1="${T}" y2="${H - B}" stroke="${PHASE_EDGE}" stroke-dasharray="4 3"/>`,
      `<line x1="${x1.toFixed(1)}" x2="${x1.toFixed(1)}" y1="${T}" y2="${H - B}" stroke="${PHASE_EDGE}" stroke-dasharray="4 3"/>`,
      `<text x="${((x0 + x1) / 2).toFixed(1)}" y="${T - 5}" text-anchor="middle" fill="${PHASE_EDGE}">${escapeHtml(p.label)}</text>`,
    );
  }
  for (const v of ticks) {
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/><text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${tickLabel(v)}</text>`,
    );
  }
  parts.push(
    `<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">${escapeHtml(unit)}</text>`,
  );
  const step = Math.max(1, Math.round(niceTicks(len - 1, 7)[1] ?? 1)); // whole seconds
  for (let i = 0; i < len; i += step)
    parts.push(
      `<text x="${x(i).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${i.toLocaleString("en-US")}</text>`,
    );
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">seconds since the first callback</text>`);
  names.forEach((name, k) => parts.push(...seriesSvg(series[name]!, colourOf(name, k), x, y)));
  parts.push(`</svg>`);
  return parts.join("\n");
}

const PHASE_FILL = "#fdf0d5";
const PHASE_EDGE = "#a15c00";
const colourOf = (name: string, k: number) => NAMED_COLOURS[name] ?? PALETTE[k % PALETTE.length]!;

/** A series as polylines broken at missing seconds; a lone point as a dot, since a one-point line draws nothing. */
function seriesSvg(
  values: readonly (number | null)[],
  color: string,
  x: (i: number) => number,
  y: (v: number) => number,
): string[] {
  const segments: string[][] = [[]];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) segments.push([]);
    else segments.at(-1)!.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  });
  return segments.flatMap((seg) => {
    if (seg.length === 1) {
      const [cx, cy] = seg[0]!.split(",");
      return [`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`];
    }
    return seg.length > 1
      ? [`<polyline fill="none" stroke="${color}" stroke-width="2" points="${seg.join(" ")}"/>`]
      : [];
  });
}

/** A chart with its title and a legend in the page's flow, so both wrap on a narrow screen. */
export function chartHtml(
  title: string,
  unit: string,
  series: Record<string, readonly (number | null)[]>,
  options: ChartOptions = {},
): string {
  const legend = [
    ...Object.keys(series).map(
      (name, k) =>
        `<li data-series="${escapeHtml(name)}"><span class="swatch" style="background:${colourOf(name, k)}"></span>${escapeHtml(name)}</li>`,
    ),
    ...(options.phases ?? []).map(
      (p) =>
        `<li data-phase="${escapeHtml(p.label)}"><span class="swatch phase" style="background:${PHASE_FILL};border-color:${PHASE_EDGE}"></span>${escapeHtml(p.legend)}</li>`,
    ),
  ];
  return `<figure data-chart="${escapeHtml(title)}"><figcaption>${escapeHtml(title)}</figcaption>
${lineChartSvg(title, unit, series, options)}
<ul class="legend">${legend.join("")}</ul></figure>`;
}

/** What the page says first: the verdict, the key figures, the invariants. */
function verdictHtml(f: RushFacts): string {
  if (f.ok) return `<p class="verdict pass">PASS: all six invariants hold, and Postgres saw no deadlock.</p>`;
  const broken = f.invariants.filter((c) => !c.ok).map((c) => c.id);
  return `<p class="verdict fail">FAIL: ${escapeHtml(broken.join(", "))} broken; see below.</p>`;
}

/** The busiest second's answers, from the per-second series. */
function answeredPeak(s: RushSeries): number {
  return Math.max(0, ...s.seconds.map((i) => Object.values(s.answersByOutcome).reduce((t, xs) => t + (xs[i] ?? 0), 0)));
}

function figuresHtml(f: RushFacts): string {
  const c = f.counts;
  const v = c.vouchers.total;
  const r = c.refunds;
  const st = f.settlement;
  const figures: [string, string][] = [
    ["vouchers held / quota", `${n(v.held)} / ${n(v.quota)}`],
    ["peak rate offered / answered", `${n(f.scenario.arrival.peakRatePerS)}/s / ${n(answeredPeak(f.series))}/s`],
    [COUNT_LABELS.acknowledged, n(c.attempts.acknowledged)],
    ["answer p50 / p99", `${ms(f.ackMs.p50, "no answer")} / ${ms(f.ackMs.p99, "no answer")}`],
    [
      "first-come-first-served inversion window",
      f.inversionMs === null ? "none seen" : `${n(Math.round(f.inversionMs))} ms`,
    ],
    [
      "refunds",
      r
        ? `${n(r.payments)} ${COUNT_LABELS.refundPayments}: ${n(r.returned)} vouchers returned (${n(r.reclaimGranted)} granted again), ${n(r.kept)} kept (partial)`
        : "n/a (no refund phase: --refund-share 0)",
    ],
    [
      "settlement (CNY)",
      `granted ${cny(st.grantedFen)}, refunded ${cny(st.refundedFen)}, net ${cny(st.netSpentFen)} of ${cny(st.budgetFen)}; left ${cny(st.leftoverFen)}`,
    ],
  ];
  return tableHtml(
    "figures",
    null,
    figures.map(([k, x]) => [th(k), x]),
  );
}

function invariantsHtml(f: RushFacts): string {
  const rank = (id: string) => (/^I[1-6]$/.test(id) ? Number(id.slice(1)) : 10);
  const rows = [...f.invariants]
    .sort((a, b) => rank(a.id) - rank(b.id))
    .map((c) => [
      { cls: c.ok ? "pass" : "fail", text: c.ok ? "PASS" : "FAIL" },
      INVARIANT_NAMES[c.id] ?? c.id,
      { cls: "detail", text: c.detail },
    ]);
  return `<h2>Invariants</h2>\n${tableHtml("invariants", ["", "promise", "evidence"], rows)}`;
}

/** What each count counts, and the outcomes with answers and stored decisions side by side. */
function countsHtml(f: RushFacts): string {
  const c = f.counts;
  const what: [string, number][] = [
    [COUNT_LABELS.callbacks, c.callbacks.sent],
    ["arrivals dropped by the load generator (never sent)", c.callbacks.dropped],
    [COUNT_LABELS.attemptsSent, c.attempts.sent],
    [COUNT_LABELS.acknowledged, c.attempts.acknowledged],
    [COUNT_LABELS.decisions, c.decisions.total],
    [COUNT_LABELS.byWorker, c.decisions.byWorker],
    ...Object.entries(c.callbacks.byKind).map(([k, v]) => [`callbacks sent of kind "${k}"`, v] as [string, number]),
  ];
  const outcomes = outcomeRows(c).map((r) => [
    r.label === "total" ? th("total") : r.label,
    cell(r.answers),
    cell(r.decisions),
  ]);
  return `<h2>What was counted</h2>
${tableHtml(
  "counts",
  ["count", "number"],
  what.map(([k, v]) => [k, n(v)]),
)}
<h3>Outcomes: answers sent to acquirers and decisions stored</h3>
<p class="note">${escapeHtml(OUTCOME_NOTE)}</p>
${tableHtml("outcomes", ["outcome", COUNT_LABELS.answers, COUNT_LABELS.decisions], outcomes)}`;
}

function stockHtml(f: RushFacts): string {
  const v = f.counts.vouchers;
  const row = (t: TierCount, soldOut: string) => [
    t.tierId === "total" ? th("total") : t.tierId,
    ...[t.quota, t.held, t.remaining, t.granted, t.returned].map(n),
    soldOut,
  ];
  return `<h2>Stock per tier</h2>
<p class="note">Held = granted − returned by refunds. A voucher a refund returns is granted again, so "granted" can pass the quota while "held" never does.</p>
${tableHtml(
  "stock",
  ["tier", "quota", "held", "remaining", "granted", "returned", "sold out at (rush)"],
  [...v.tiers.map((t) => row(t, f.soldOutAt[t.tierId] ?? "not sold out")), row(v.total, "n/a (per tier)")],
)}`;
}

function refundsHtml(f: RushFacts): string {
  const r = f.counts.refunds;
  if (!r) return "";
  return `<h2>Refunds after the rush</h2>
<p class="note">${n(r.payments)} ${COUNT_LABELS.refundPayments}, each refund sent twice (the second an acquirer's retry, answered the same), plus ${n(r.requests - 2 * r.payments)} error probes: ${n(r.requests)} ${COUNT_LABELS.refundRequests.replace(/ \(.*\)$/, "")}. Then ${n(r.reclaimSent)} new payers claimed the ${n(r.returned)} returned vouchers: ${n(r.reclaimGranted)} granted.</p>
${tableHtml(
  "refunds",
  ["answer to a refund request", "requests"],
  refundRows(r).map(([k, v]) => [k === "total" ? th("total") : k, n(v)]),
)}`;
}

function latencyHtml(f: RushFacts): string {
  const row = (label: string, p: Percentiles, none: string) => [
    label,
    ...[p.p50, p.p90, p.p99, p.p999, p.max].map((v) => ms(v, none)),
  ];
  return `<h2>Latency</h2>
${tableHtml(
  "latency",
  ["", "p50", "p90", "p99", "p99.9", "max"],
  [
    row(`answer (load generator; ${n(acknowledgingAnswers(f.counts))} answers 200/202)`, f.ackMs, "no answer"),
    row(
      `decision, received to committed (${n(f.counts.decisions.byWorker)} ${COUNT_LABELS.byWorker})`,
      f.decisionMs,
      "no decision by a worker",
    ),
  ],
)}`;
}

type CellHtml = string | { cls: string; text: string } | { th: string };
const th = (text: string): CellHtml => ({ th: text });
const cell = (v: Cell) => (typeof v === "number" ? n(v) : v);

/** A table in its own horizontally scrolling box; every cell has text. */
function tableHtml(name: string, head: readonly string[] | null, rows: readonly (readonly CellHtml[])[]): string {
  const td = (c: CellHtml) =>
    typeof c === "string"
      ? `<td>${escapeHtml(c)}</td>`
      : "th" in c
        ? `<th>${escapeHtml(c.th)}</th>`
        : `<td class="${c.cls}">${escapeHtml(c.text)}</td>`;
  const header = head ? `<tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr>\n` : "";
  return `<div class="scroll"><table data-table="${name}">${header}${rows.map((r) => `<tr>${r.map(td).join("")}</tr>`).join("\n")}</table></div>`;
}

function chartsHtml(s: RushSeries): string {
  const ack = { p50: s.ackMs.p50, p99: s.ackMs.p99 };
  const decision = { p50: s.decisionMs.p50, p99: s.decisionMs.p99 };
  // One log axis for both latency charts, so that they compare at a glance.
  const latencyRange = logRange(ack, decision);
  const phases = s.refundPhase
    ? [
        {
          ...s.refundPhase,
          label: "refunds",
          legend: "refund phase: refunds sent, then new payers claim the returned vouchers",
        },
      ]
    : [];
  return [
    chartHtml(
      "Answers per second, by outcome (one per callback: a resend is answered again, so granted answers go on after a tier sold out)",
      "answers / s",
      s.answersByOutcome,
      { integer: true, phases },
    ),
    chartHtml("Vouchers remaining per tier (quota minus held)", "vouchers", s.remainingByTier, {
      integer: true,
      phases,
    }),
    chartHtml("Attempts queued, not yet decided", "attempts", { queued: s.queued }, { integer: true, phases }),
    chartHtml("Answer latency (load generator)", "ms (log scale)", ack, { log: true, range: latencyRange, phases }),
    chartHtml(
      "Decision latency (received to committed; seconds with no decision have no point)",
      "ms (log scale)",
      decision,
      { log: true, range: latencyRange, phases },
    ),
  ].join("\n");
}

const STYLE = `
  body { font-family: sans-serif; margin: 12px; color: #222; max-width: 1000px; }
  h1 { font-size: 20px; overflow-wrap: anywhere; }
  figure { margin: 20px 0; max-width: 720px; }
  figcaption { font-weight: bold; margin-bottom: 4px; }
  svg { display: block; height: auto; }
  .legend { list-style: none; padding: 0; margin: 4px 0 0 0; display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 13px; }
  .swatch { display: inline-block; width: 14px; height: 4px; margin: 0 6px 3px 0; vertical-align: middle; }
  .swatch.phase { height: 10px; border: 1px dashed; }
  .scroll { overflow-x: auto; max-width: 100%; }
  pre { background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 12px; }
  table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
  th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
  td:nth-child(n+2) { font-variant-numeric: tabular-nums; }
  table[data-table="invariants"] { min-width: 560px; }
  table[data-table="stock"] td, table[data-table="latency"] td:nth-child(n+2), table[data-table="outcomes"] td:nth-child(n+2),
  table[data-table="refunds"] td, table[data-table="counts"] td:nth-child(2) { white-space: nowrap; }
  td.detail { font-size: 12px; color: #555; overflow-wrap: anywhere; min-width: 240px; }
  .note { font-size: 13px; color: #555; }
  .verdict { font-size: 22px; font-weight: bold; padding: 10px 14px; border-radius: 6px; }
  .verdict.pass, td.pass { color: #1a7f37; } .verdict.pass { background: #e6f4ea; }
  .verdict.fail, td.fail { color: #b42318; } .verdict.fail { background: #fdecea; }
  .settings { color: #555; font-size: 13px; }
`;

/** The page: summary first (verdict, figures, invariants), then the counts, stock, refunds, latency, the charts, the text report. */
export function rushPage(f: RushFacts, text: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(f.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(f.title)}</h1>
<section id="summary">
${verdictHtml(f)}
${figuresHtml(f)}
${invariantsHtml(f)}
<p class="settings">${f.settings.map(([k, v]) => `${escapeHtml(k)}: <b>${escapeHtml(v)}</b>`).join(" · ")}</p>
</section>
${countsHtml(f)}
${stockHtml(f)}
${refundsHtml(f)}
${latencyHtml(f)}
<h2>Per second</h2>
<p class="note">Per second of the run. Answers and answer latency as the load generator saw them; decision latency, stock and the queue from the instants Postgres stored for each attempt. Vouchers remaining = quota minus held (granted less returned by refunds): a voucher a refund returns is granted again, so remaining can rise and fall again, never below zero.${f.series.refundPhase ? " The shaded band is the refund phase." : ""}</p>
${chartsHtml(f.series)}
<details><summary>The full text report</summary>
<pre>${escapeHtml(text)}</pre>
</details>
</body>
</html>
`;
}

/** The invariants in words, as the brief names them. */
export const INVARIANT_NAMES: Readonly<Record<string, string>> = {
  I1: "I1 never oversold: per tier, held ≤ quota and held + remaining = quota",
  I2: "I2 one voucher per payer per activity",
  I3: "I3 every acknowledged attempt decided exactly once",
  I4: "I4 the same txnId always gets the same answer",
  I5: "I5 nothing decided without a valid signature",
  I6: "I6 no stranded stock: sold_out only when the tier is really empty",
  budget: "budget: discounts never above the campaign's budget",
  refunds: "refunds: each voucher returned once, never above the payment",
  "refund-phase": "refund phase: every refund answered as expected, returned vouchers granted again",
  deadlocks: "Postgres saw no deadlock",
};

const cny = (fen: number) =>
  (fen / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
