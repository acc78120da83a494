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

const OUTCOME_OF = (r: SentRecord): string => {
  if (r.status === 200) return (r.answer as { status?: string } | undefined)?.status ?? "granted";
  if (r.status === 202) return "pending";
  return "error";
};

export async function rushSeries(db: Kysely<Database>, records: readonly SentRecord[], startedAtMs: number, campaignId: string): Promise<RushSeries> {
  const rows = (
    await sql<{ r: number; d: number; status: string; tier_id: string | null; decided_by: string }>`
      select extract(epoch from received_at) * 1000 as r, extract(epoch from decided_at) * 1000 as d, status, tier_id, decided_by
        from attempts where campaign_id = ${campaignId} or campaign_id is null`.execute(db)
  ).rows.map((x) => ({ ...x, r: Number(x.r), d: Number(x.d) }));
  const tiers = (await sql<{ id: string; quota: number }>`select id, quota from tiers where campaign_id = ${campaignId} order by activity_id, threshold_fen`.execute(db)).rows;

  let lastMs = startedAtMs;
  for (const r of records) lastMs = Math.max(lastMs, r.sentAtMs + r.ackMs);
  for (const x of rows) lastMs = Math.max(lastMs, x.d);
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
  const queuedDelta = new Array<number>(n + 1).fill(0);
  for (const x of rows) {
    if (x.decided_by === "worker") {
      decisionBy[bucket(x.d)]!.push(x.d - x.r);
      // Queued from its second of arrival until the second it was decided.
      queuedDelta[bucket(x.r)]! += 1;
      queuedDelta[bucket(x.d)]! -= 1;
    }
    if (x.status === "granted" && x.tier_id && grantsBy[x.tier_id]) grantsBy[x.tier_id]![bucket(x.d)]! += 1;
  }
  const pct = (xs: number[], p: number) => (xs.length === 0 ? null : percentiles(xs, [p])[0]!);
  const remainingByTier: Record<string, number[]> = {};
  for (const t of tiers) {
    let left = t.quota;
    remainingByTier[t.id] = grantsBy[t.id]!.map((g) => (left -= g));
  }
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

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** One line chart: x = seconds of the run, any number of named series (null = no data that second). */
export function lineChartSvg(title: string, unit: string, series: Record<string, readonly (number | null)[]>, options: { log?: boolean } = {}): string {
  const W = 820, H = 300, L = 70, R = 170, T = 36, B = 40;
  const names = Object.keys(series);
  const len = Math.max(1, ...names.map((k) => series[k]!.length));
  const values = names.flatMap((k) => series[k]!.filter((v): v is number => v !== null && Number.isFinite(v)));
  const positive = values.filter((v) => v > 0);
  const log = options.log === true && positive.length > 0;
  const lo = log ? Math.min(...positive) / 1.2 : 0;
  const hi = Math.max(log ? lo * 10 : 1, ...values) * (log ? 1.5 : 1.1);
  const x = (i: number) => L + ((W - L - R) * i) / Math.max(1, len - 1);
  const y = (v: number) =>
    log ? T + (H - T - B) * (1 - (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) : T + (H - T - B) * (1 - v / hi);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12" role="img" aria-label="${escapeHtml(title)}">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${L}" y="20" font-size="14" font-weight="bold">${escapeHtml(title)}</text>`);
  const ticks = log
    ? Array.from({ length: Math.floor(Math.log10(hi)) - Math.ceil(Math.log10(lo)) + 1 }, (_, k) => 10 ** (Math.ceil(Math.log10(lo)) + k))
    : Array.from({ length: 5 }, (_, k) => (hi / 1.1) * (k / 4));
  for (const v of ticks) {
    const label = v >= 1000 ? `${Math.round(v).toLocaleString("en-US")}` : v >= 10 ? String(Math.round(v)) : v.toFixed(1);
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/><text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${label}</text>`);
  }
  parts.push(`<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">${escapeHtml(unit)}</text>`);
  const step = Math.max(1, Math.ceil(len / 12 / 5) * 5);
  for (let i = 0; i < len; i += step) parts.push(`<text x="${x(i).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${i}</text>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">seconds since the first callback</text>`);
  names.forEach((name, k) => {
    const color = PALETTE[k % PALETTE.length]!;
    const segments: string[][] = [[]];
    series[name]!.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) segments.push([]);
      else segments.at(-1)!.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    for (const s of segments) if (s.length > 0) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${s.join(" ")}"/>`);
    parts.push(`<rect x="${W - R + 12}" y="${T + 6 + k * 20}" width="14" height="4" fill="${color}"/><text x="${W - R + 32}" y="${T + 12 + k * 20}">${escapeHtml(name)}</text>`);
  });
  parts.push(`</svg>`);
  return parts.join("\n");
}

export function rushHtml(title: string, text: string, s: RushSeries): string {
  const charts = [
    lineChartSvg("Answers per second, by outcome", "answers / s", s.answersByOutcome),
    lineChartSvg("Vouchers remaining per tier", "vouchers", s.remainingByTier),
    lineChartSvg("Attempts queued, not yet decided", "attempts", { queued: s.queued }),
    lineChartSvg("Answer latency (load generator)", "ms (log scale)", { p50: s.ackMs.p50, p99: s.ackMs.p99 }, { log: true }),
    lineChartSvg("Decision latency (received to committed)", "ms (log scale)", { p50: s.decisionMs.p50, p99: s.decisionMs.p99 }, { log: true }),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1000px; }
  figure { margin: 16px 0; }
  pre { background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 12px; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>Per second of the run. Answers and answer latency as the load generator saw them; decision latency, stock and the queue from the instants Postgres stored for each attempt.</p>
${charts.map((c) => `<figure>${c}</figure>`).join("\n")}
<h2>Report</h2>
<pre>${escapeHtml(text)}</pre>
</body>
</html>
`;
}
