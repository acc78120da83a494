import { formatFen } from "@quanta/domain";
import { COUNT_LABELS, OUTCOME_NOTE, outcomeRows, refundRows, type Cell, type TierCount } from "./rush-counts.js";
import { acknowledgingAnswers, ms, n, type Percentiles, type RushFacts } from "./rush-text.js";
import type { RushSeries } from "./rush-series.js";
import { escapeHtml } from "./html-escape.js";

/**
 * The rush page's tables, each from the report's facts: the key figures and the invariants of the
 * summary, then what was counted (counts and outcomes), stock per tier, refunds and latency.
 * Every count comes from RushCounts under its COUNT_LABELS label, as in the text report.
 */
/** The busiest second's answers, from the per-second series. */
function answeredPeak(s: RushSeries): number {
  return Math.max(0, ...s.seconds.map((i) => Object.values(s.answersByOutcome).reduce((t, xs) => t + (xs[i] ?? 0), 0)));
}

export function figuresHtml(f: RushFacts): string {
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
      `granted ${formatFen(st.grantedFen)}, refunded ${formatFen(st.refundedFen)}, net ${formatFen(st.netSpentFen)} of ${formatFen(st.budgetFen)}; left ${formatFen(st.leftoverFen)}`,
    ],
  ];
  return tableHtml(
    "figures",
    null,
    figures.map(([k, x]) => [th(k), x]),
  );
}

export function invariantsHtml(f: RushFacts): string {
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
export function countsHtml(f: RushFacts): string {
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

export function stockHtml(f: RushFacts): string {
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

export function refundsHtml(f: RushFacts): string {
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

export function latencyHtml(f: RushFacts): string {
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

/** The invariants in words, as the brief names them. */
const INVARIANT_NAMES: Readonly<Record<string, string>> = {
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
