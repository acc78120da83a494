import { sql, type Kysely } from "kysely";
import type { Database } from "@quanta/db";
import { percentiles, type SentRecord } from "@quanta/loadtest";

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

export async function rushSeries(
  db: Kysely<Database>,
  records: readonly SentRecord[],
  startedAtMs: number,
  campaignId: string,
): Promise<RushSeries> {
  const rows = (
    await sql<{ r: number; d: number; v: number | null; status: string; tier_id: string | null; decided_by: string }>`
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

  let lastMs = startedAtMs;
  for (const r of records) lastMs = Math.max(lastMs, r.sentAtMs + r.ackMs);
  for (const x of rows) lastMs = Math.max(lastMs, x.d, x.v ?? 0);
  const n = Math.max(1, Math.ceil((lastMs - startedAtMs) / 1000) + 1);
  const seconds = Array.from({ length: n }, (_, i) => i);
  const bucket = (ms: number) => Math.min(n - 1, Math.max(0, Math.floor((ms - startedAtMs) / 1000)));

  const answersByOutcome: Record<string, number[]> = {};
  const ackBy: number[][] = seconds.map(() => []);
  for (const r of records) {
    const i = bucket(r.sentAtMs + r.ackMs);
    const o = OUTCOME_OF(r);
    (answersByOutcome[o] ??= new Array<number>(n).fill(0))[i]! += 1;
    if (r.status === 200 || r.status === 202) ackBy[i]!.push(r.ackMs);
  }
  const decisionBy: number[][] = seconds.map(() => []);
  const grantsBy: Record<string, number[]> = Object.fromEntries(tiers.map((t) => [t.id, new Array<number>(n).fill(0)]));
  const returnsBy: Record<string, number[]> = Object.fromEntries(
    tiers.map((t) => [t.id, new Array<number>(n).fill(0)]),
  );
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
  const pct = (xs: number[], p: number) => (xs.length === 0 ? null : percentiles(xs, [p])[0]!);
  const remainingByTier: Record<string, number[]> = {};
  for (const t of tiers)
    remainingByTier[`${t.id} (quota ${t.quota.toLocaleString("en-US")})`] = remainingSeries(
      t.quota,
      grantsBy[t.id]!,
      returnsBy[t.id]!,
    );
  let queued = 0;
  return {
    seconds,
    answersByOutcome,
    ackMs: { p50: ackBy.map((xs) => pct(xs, 50)), p99: ackBy.map((xs) => pct(xs, 99)) },
    decisionMs: { p50: decisionBy.map((xs) => pct(xs, 50)), p99: decisionBy.map((xs) => pct(xs, 99)) },
    remainingByTier,
    queued: seconds.map((i) => (queued += queuedDelta[i]!)),
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

/** One line chart: x = seconds of the run, any number of named series (null = no data that second). */
export function lineChartSvg(
  title: string,
  unit: string,
  series: Record<string, readonly (number | null)[]>,
  options: ChartOptions = {},
): string {
  const names = Object.keys(series);
  const W = 820,
    H = 300,
    L = 70,
    T = 36,
    B = 40;
  const R = Math.max(150, 44 + 7 * Math.max(0, ...names.map((k) => k.length))); // the legend's longest name fits
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
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" style="max-width:${W}px" font-family="sans-serif" font-size="12" role="img" aria-label="${escapeHtml(title)}">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${L}" y="20" font-size="14" font-weight="bold">${escapeHtml(title)}</text>`);
  for (const v of ticks) {
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/><text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${tickLabel(v)}</text>`,
    );
  }
  parts.push(
    `<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">${escapeHtml(unit)}</text>`,
  );
  const step = Math.max(1, Math.round(niceTicks(len - 1, 8)[1] ?? 1)); // whole seconds
  for (let i = 0; i < len; i += step)
    parts.push(
      `<text x="${x(i).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${i.toLocaleString("en-US")}</text>`,
    );
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">seconds since the first callback</text>`);
  names.forEach((name, k) => {
    const color = NAMED_COLOURS[name] ?? PALETTE[k % PALETTE.length]!;
    const segments: string[][] = [[]];
    series[name]!.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) segments.push([]);
      else segments.at(-1)!.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    for (const seg of segments) {
      if (seg.length === 1) {
        const [cx, cy] = seg[0]!.split(",");
        parts.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`); // a lone point: a one-point line draws nothing
      } else if (seg.length > 1)
        parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${seg.join(" ")}"/>`);
    }
    parts.push(
      `<rect x="${W - R + 12}" y="${T + 6 + k * 20}" width="14" height="4" fill="${color}"/><text x="${W - R + 32}" y="${T + 12 + k * 20}">${escapeHtml(name)}</text>`,
    );
  });
  parts.push(`</svg>`);
  return parts.join("\n");
}

/** What the page says first: the verdict, the stock, the speed, the money, and how the run was set up. */
export interface RushSummary {
  ok: boolean;
  invariants: readonly { id: string; ok: boolean; detail: string }[];
  tiers: readonly {
    tierId: string;
    quota: number;
    granted: number;
    returned: number;
    held: number;
    remaining: number;
  }[];
  offeredPeakPerS: number;
  acknowledged: number;
  ackMs: { p50: number; p99: number };
  inversionMs: number | null;
  refunds: { chosen: number; returned: number; kept: number } | null;
  settlement: { budgetFen: number; grantedFen: number; refundedFen: number; netSpentFen: number; leftoverFen: number };
  /** The run's settings, in the order shown: scenario, rate, payers, processes, commit… */
  settings: readonly [string, string][];
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

const n = (v: number) => v.toLocaleString("en-US");
const cny = (fen: number) =>
  (fen / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function summaryHtml(sum: RushSummary, s: RushSeries): string {
  const answeredPeak = Math.max(
    0,
    ...s.seconds.map((i) => Object.values(s.answersByOutcome).reduce((t, xs) => t + (xs[i] ?? 0), 0)),
  );
  const held = sum.tiers.reduce((t, x) => t + x.held, 0);
  const quota = sum.tiers.reduce((t, x) => t + x.quota, 0);
  const verdict = sum.ok
    ? `<p class="verdict pass">PASS: all six invariants hold, and Postgres saw no deadlock.</p>`
    : `<p class="verdict fail">FAIL: ${escapeHtml(
        sum.invariants
          .filter((c) => !c.ok)
          .map((c) => c.id)
          .join(", "),
      )} broken; see below.</p>`;
  const rank = (id: string) => (/^I[1-6]$/.test(id) ? Number(id.slice(1)) : 10);
  const invariants = [...sum.invariants]
    .sort((a, b) => rank(a.id) - rank(b.id))
    .map(
      (c) =>
        `<tr><td class="${c.ok ? "pass" : "fail"}">${c.ok ? "PASS" : "FAIL"}</td><td>${escapeHtml(INVARIANT_NAMES[c.id] ?? c.id)}</td><td class="detail">${escapeHtml(c.detail)}</td></tr>`,
    )
    .join("\n");
  const tiers = sum.tiers
    .map(
      (t) =>
        `<tr><td>${escapeHtml(t.tierId)}</td><td>${n(t.quota)}</td><td>${n(t.held)}</td><td>${n(t.remaining)}</td><td>${n(t.granted)}</td><td>${n(t.returned)}</td></tr>`,
    )
    .join("\n");
  const figures: [string, string][] = [
    ["vouchers held / quota", `${n(held)} / ${n(quota)}`],
    ["peak rate offered / answered", `${n(sum.offeredPeakPerS)}/s / ${n(answeredPeak)}/s`],
    ["acknowledged attempts (200/202)", n(sum.acknowledged)],
    ["answer p50 / p99", `${sum.ackMs.p50.toFixed(1)} ms / ${sum.ackMs.p99.toFixed(1)} ms`],
    [
      "first-come-first-served inversion window",
      sum.inversionMs === null ? "none seen" : `${n(Math.round(sum.inversionMs))} ms`,
    ],
    ...(sum.refunds
      ? ([
          [
            "refunds",
            `${n(sum.refunds.chosen)} payments refunded: ${n(sum.refunds.returned)} vouchers returned, ${n(sum.refunds.kept)} kept (partial)`,
          ],
        ] as [string, string][])
      : []),
    [
      "settlement (CNY)",
      `granted ${cny(sum.settlement.grantedFen)}, refunded ${cny(sum.settlement.refundedFen)}, net ${cny(sum.settlement.netSpentFen)} of ${cny(sum.settlement.budgetFen)}; left ${cny(sum.settlement.leftoverFen)}`,
    ],
  ];
  return `${verdict}
<table class="figures">${figures.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join("")}</table>
<h2>Invariants</h2>
<table><tr><th></th><th>promise</th><th>evidence</th></tr>
${invariants}</table>
<h2>Stock per tier</h2>
<p>Held = granted − returned by refunds. A voucher a refund returns is granted again, so "granted" can pass the quota while "held" never does.</p>
<table><tr><th>tier</th><th>quota</th><th>held</th><th>remaining</th><th>granted</th><th>returned</th></tr>
${tiers}</table>
<p class="settings">${sum.settings.map(([k, v]) => `${escapeHtml(k)}: <b>${escapeHtml(v)}</b>`).join(" · ")}</p>`;
}

export function rushHtml(title: string, text: string, s: RushSeries, summary?: RushSummary): string {
  const ack = { p50: s.ackMs.p50, p99: s.ackMs.p99 };
  const decision = { p50: s.decisionMs.p50, p99: s.decisionMs.p99 };
  // One log axis for both latency charts, so that they compare at a glance.
  const latencyRange = logRange(ack, decision);
  const charts = [
    lineChartSvg("Answers per second, by outcome", "answers / s", s.answersByOutcome, { integer: true }),
    lineChartSvg("Vouchers remaining per tier (quota minus held)", "vouchers", s.remainingByTier, { integer: true }),
    lineChartSvg("Attempts queued, not yet decided", "attempts", { queued: s.queued }, { integer: true }),
    lineChartSvg("Answer latency (load generator)", "ms (log scale)", ack, { log: true, range: latencyRange }),
    lineChartSvg(
      "Decision latency (received to committed; seconds with no decision have no point)",
      "ms (log scale)",
      decision,
      { log: true, range: latencyRange },
    ),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: sans-serif; margin: 16px; color: #222; max-width: 1000px; }
  figure { margin: 16px 0; }
  pre { background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 12px; }
  table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
  th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
  td:nth-child(n+2) { font-variant-numeric: tabular-nums; }
  td.detail { font-size: 12px; color: #555; overflow-wrap: anywhere; }
  .verdict { font-size: 22px; font-weight: bold; padding: 10px 14px; border-radius: 6px; }
  .verdict.pass, td.pass { color: #1a7f37; } .verdict.pass { background: #e6f4ea; }
  .verdict.fail, td.fail { color: #b42318; } .verdict.fail { background: #fdecea; }
  .settings { color: #555; font-size: 13px; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${summary ? summaryHtml(summary, s) : ""}
<h2>Per second</h2>
<p>Per second of the run. Answers and answer latency as the load generator saw them; decision latency, stock and the queue from the instants Postgres stored for each attempt. Vouchers remaining = quota minus held (granted less returned by refunds): a voucher a refund returns is granted again, so remaining can rise and fall again, never below zero.</p>
${charts.map((c) => `<figure>${c}</figure>`).join("\n")}
<details><summary>The full text report</summary>
<pre>${escapeHtml(text)}</pre>
</details>
</body>
</html>
`;
}
