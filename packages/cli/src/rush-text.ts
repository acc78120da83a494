import { formatFen } from "@quanta/domain";
import { table, type Scenario } from "@quanta/loadtest";
import { COUNT_LABELS, OUTCOME_NOTE, outcomeRows, refundRows, type RushCounts } from "./rush-counts.js";
import type { RushSeries } from "./rush-series.js";
import type { RefundPhaseResult } from "./rush-refunds.js";

/**
 * Everything the rush report shows, as data: what rush.ts gathers once from the run and writes
 * as JSON, and what the text report and the HTML page are rendered from (so a recorded run
 * renders again without a stack).
 */
export interface RushFacts {
  title: string;
  scenario: Scenario;
  startedAt: string;
  runS: number;
  dropped: number;
  /** Distinct attempts acknowledged (counts.attempts.acknowledged). */
  acknowledged: number;
  getChecks: { asked: number; mismatches: number };
  /** Answers by status and body (counts.answers.byAnswer). */
  answers: Record<string, number>;
  counts: RushCounts;
  tiers: readonly { tierId: string; discountFen: number }[];
  /** Per tier, when its last voucher went during the rush ("not sold out" otherwise). */
  soldOutAt: Record<string, string>;
  ackMs: Percentiles;
  decisionMs: Percentiles;
  /** Seconds from the first decision stored to the last. */
  decidedSpanS: number;
  inversionMs: number | null;
  owners: readonly { pid?: number; partitions: readonly number[] }[];
  deployment: unknown;
  deploymentLines: readonly string[];
  deadlocks: number;
  refunds: RefundPhaseResult | null;
  settlement: { budgetFen: number; grantedFen: number; refundedFen: number; netSpentFen: number; leftoverFen: number };
  settlementText: string;
  invariants: readonly { id: string; ok: boolean; detail: string }[];
  ok: boolean;
  settings: readonly [string, string][];
  series: RushSeries;
}

export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
}

export const n = (v: number) => v.toLocaleString("en-US");

/** A latency, or why there is none. */
export function ms(v: number | null | undefined, none: string): string {
  if (v === null || v === undefined || Number.isNaN(v)) return `n/a (${none})`;
  return `${v < 10 ? v.toFixed(1) : n(Math.round(v))} ms`;
}

/** Answers that acknowledged an attempt (200 or 202), resends included. */
export function acknowledgingAnswers(c: RushCounts): number {
  return Object.entries(c.answers.byAnswer)
    .filter(([k]) => k.startsWith("200 ") || k.startsWith("202 "))
    .reduce((t, [, v]) => t + v, 0);
}

export function rushText(f: RushFacts): string {
  return [
    ...answersText(f),
    ...f.deploymentLines,
    "",
    ...tiersText(f),
    ...latencyText(f),
    ...refundsText(f),
    f.settlementText,
    "",
    ...invariantsText(f),
  ].join("\n");
}

function answersText(f: RushFacts): string[] {
  const c = f.counts;
  return [
    `Outcomes: ${COUNT_LABELS.answers} (${n(c.answers.total)}, one per callback in ${f.runS.toFixed(1)} s; ${n(c.callbacks.dropped)} arrivals dropped by the load generator) and ${COUNT_LABELS.decisions} (${n(c.decisions.total)})`,
    table(
      ["outcome", "answers sent", "share of answers", "decisions stored"],
      outcomeRows(c).map((r) => [
        r.label,
        typeof r.answers === "number" ? n(r.answers) : r.answers,
        typeof r.answers === "number" ? `${((100 * r.answers) / Math.max(1, c.answers.total)).toFixed(1)} %` : "",
        typeof r.decisions === "number" ? n(r.decisions) : r.decisions,
      ]),
    ),
    OUTCOME_NOTE,
    `${COUNT_LABELS.attemptsSent}: ${n(c.attempts.sent)}; ${COUNT_LABELS.acknowledged}: ${n(c.attempts.acknowledged)}`,
    `Callback kinds sent: ${Object.entries(c.callbacks.byKind)
      .map(([k, v]) => `${k} ${n(v)}`)
      .join(", ")}`,
    "",
  ];
}

function tiersText(f: RushFacts): string[] {
  const v = f.counts.vouchers;
  const discount = (id: string) => f.tiers.find((t) => t.tierId === id)?.discountFen ?? 0;
  const spentFen = v.tiers.reduce((t, x) => t + x.held * discount(x.tierId), 0);
  return [
    "Vouchers per tier (granted includes re-grants of vouchers that refunds returned; held = granted − returned)",
    table(
      ["tier", "quota", "granted", "returned", "held", "remaining", "discounts held (CNY)", "sold out at"],
      v.tiers.map((t) => [
        t.tierId,
        n(t.quota),
        n(t.granted),
        n(t.returned),
        n(t.held),
        n(t.remaining),
        formatFen(t.held * discount(t.tierId)),
        f.soldOutAt[t.tierId] ?? "not sold out",
      ]),
    ),
    `total: ${n(v.total.granted)} granted, ${n(v.total.returned)} returned, ${n(v.total.held)} held, of ${n(v.total.quota)} vouchers; ${formatFen(spentFen)} CNY of discounts held`,
    "",
  ];
}

function latencyText(f: RushFacts): string[] {
  const c = f.counts;
  const a = f.ackMs;
  const d = f.decisionMs;
  const none = "no decision by a worker";
  const rate = f.decidedSpanS > 0 ? `${n(Math.round(c.decisions.total / f.decidedSpanS))}/s` : "n/a (one instant)";
  return [
    "Latency",
    table(
      ["", "p50", "p90", "p99", "p99.9", "max"],
      [
        [
          `answer (load generator; ${n(acknowledgingAnswers(c))} answers 200/202)`,
          ...[a.p50, a.p90, a.p99, a.p999, a.max].map((v) => ms(v, "no answer")),
        ],
        [
          `decision (received -> committed; ${n(c.decisions.byWorker)} ${COUNT_LABELS.byWorker})`,
          ...[d.p50, d.p90, d.p99, d.p999, d.max].map((v) => ms(v, none)),
        ],
      ],
    ),
    `${n(c.decisions.total)} ${COUNT_LABELS.decisions} over ${f.decidedSpanS.toFixed(1)} s (${rate})`,
    f.inversionMs === null
      ? "first come, first served: nothing was refused sold_out"
      : `first come, first served: a sold_out refusal arrived at most ${n(Math.round(f.inversionMs))} ms before a later attempt granted the same tier (inversion window)`,
    "",
  ];
}

function refundsText(f: RushFacts): string[] {
  const r = f.counts.refunds;
  if (!r) return [];
  return [
    `Refunds after the rush: ${n(r.payments)} ${COUNT_LABELS.refundPayments}, ${n(r.requests)} ${COUNT_LABELS.refundRequests}; dated 2020-09-14..20`,
    table(
      ["answer", "count"],
      refundRows(r).map(([k, v]) => [k, n(v)]),
    ),
    `${n(r.returned)} vouchers returned, ${n(r.kept)} kept (partial refunds above the threshold); ${n(r.reclaimSent)} new payers then claimed them: ` +
      `${n(r.reclaimGranted)} granted, ${n(f.counts.vouchers.total.remaining)} left in stock`,
    "",
  ];
}

function invariantsText(f: RushFacts): string[] {
  return [
    "Invariants",
    table(
      ["", "holds", "evidence"],
      f.invariants.map((c) => [c.id, c.ok ? "yes" : "NO", c.detail]),
    ),
    "",
    f.ok
      ? "All six invariants hold, and Postgres saw no deadlock."
      : "INVARIANT VIOLATED or deadlock seen: see the table above.",
  ];
}
