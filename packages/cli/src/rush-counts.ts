import type { TierReport } from "@quanta/db";
import { countBy, type SentRecord } from "@quanta/loadtest";
import type { RefundFigures } from "./rush-refunds.js";

/**
 * Every count the rush report shows, computed once from the run's data. The page's tables, its
 * summary and the text report all read this object, so two tables can only disagree when they
 * count different things, and then their labels (COUNT_LABELS) say which thing each counts:
 * answers sent to acquirers (one per callback, so a resend is counted again), distinct attempts
 * (txnIds), stored rows (one decision per attempt), vouchers, refund requests.
 */
export interface RushCounts {
  callbacks: { sent: number; dropped: number; byKind: Record<string, number> };
  /** One answer per callback sent, by HTTP status and body ("200 granted", "202 pending", "401 …"). */
  answers: { total: number; byAnswer: Record<string, number> };
  /** Distinct txnIds sent (forged ones aside), and those answered 200 or 202 at least once. */
  attempts: { sent: number; acknowledged: number };
  /** Rows of the attempts table after the run (the reclaim wave included), by decision; byWorker: those a worker decided. */
  decisions: { total: number; byDecision: Record<string, number>; byWorker: number };
  vouchers: { tiers: TierCount[]; total: TierCount };
  refunds: RefundCounts | null;
}

/** A tier's stock; `granted` counts re-grants of returned vouchers, so it may pass the quota, `held` (granted − returned) never does. */
export type TierCount = Pick<TierReport, "tierId" | "quota" | "granted" | "returned" | "held" | "remaining">;

/** The refund phase's figures; `requests` and `answers` count retries, `payments` does not (each refund was sent twice). */
export interface RefundCounts extends RefundFigures {
  /** Payments refunded. */
  payments: number;
}

/** What each figure counts, in the words every view uses. */
export const COUNT_LABELS = {
  callbacks: "callbacks sent in the rush (each answered once; resends, other bodies and forged ones included)",
  answers: "answers sent to acquirers",
  attemptsSent: "distinct attempts sent (txnIds)",
  acknowledged: "distinct attempts acknowledged (answered 200/202)",
  decisions: "decisions stored (rows, one per distinct attempt; reclaim wave included)",
  byWorker: "decisions taken by a worker (queued attempts)",
  refundPayments: "payments refunded",
  refundRequests: "refund requests sent (each refund twice, plus the error probes)",
} as const;

export interface CountsInput {
  records: readonly SentRecord[];
  dropped: number;
  decisions: readonly { status: string; reason: string | null; n: number; byWorker: number }[];
  tiers: readonly TierCount[];
  refunds: (RefundFigures & { chosen: number }) | null;
}

/** An answer as the acquirer saw it: status, then the decision or the error code. */
export function answerKey(r: SentRecord): string {
  const a = r.answer as { status?: string; reason?: string; error?: { code?: string } } | undefined;
  if (r.status === 200) return `200 ${a?.status}${a?.reason ? ` ${a.reason}` : ""}`;
  if (r.status === 202) return "202 pending";
  return `${r.status} ${a?.error?.code ?? "(no answer)"}`;
}

const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort((a, b) => a[0].localeCompare(b[0])));
const sum = (xs: Iterable<number>) => [...xs].reduce((n, x) => n + x, 0);

export function rushCounts(input: CountsInput): RushCounts {
  const { records } = input;
  const genuine = records.filter((r) => r.kind !== "forged");
  const acknowledged = genuine.filter((r) => r.status === 200 || r.status === 202);
  // Only the counts (a TierReport carries more), so the JSON report's counts stay counts.
  const tiers = input.tiers.map(({ tierId, quota, granted, returned, held, remaining }) => ({
    tierId,
    quota,
    granted,
    returned,
    held,
    remaining,
  }));
  const byDecision = new Map<string, number>();
  for (const d of input.decisions) {
    const key = `${d.status}${d.reason ? ` ${d.reason}` : ""}`;
    byDecision.set(key, (byDecision.get(key) ?? 0) + d.n);
  }
  const r = input.refunds;
  return {
    callbacks: { sent: records.length, dropped: input.dropped, byKind: sorted(countBy(records, (x) => x.kind)) },
    answers: { total: records.length, byAnswer: sorted(countBy(records, answerKey)) },
    attempts: {
      sent: new Set(genuine.map((x) => x.txnId)).size,
      acknowledged: new Set(acknowledged.map((x) => x.txnId)).size,
    },
    decisions: {
      total: sum(input.decisions.map((d) => d.n)),
      byDecision: sorted(byDecision),
      byWorker: sum(input.decisions.map((d) => d.byWorker)),
    },
    vouchers: {
      tiers,
      total: {
        tierId: "total",
        quota: sum(tiers.map((t) => t.quota)),
        granted: sum(tiers.map((t) => t.granted)),
        returned: sum(tiers.map((t) => t.returned)),
        held: sum(tiers.map((t) => t.held)),
        remaining: sum(tiers.map((t) => t.remaining)),
      },
    },
    refunds: r && {
      payments: r.chosen,
      requests: r.requests,
      answers: r.answers,
      returned: r.returned,
      kept: r.kept,
      reclaimSent: r.reclaimSent,
      reclaimGranted: r.reclaimGranted,
    },
  };
}

/** A cell that has no value, with the reason why. */
export type Cell = number | string;

/**
 * Answers and stored decisions side by side, one row per outcome: a 200 answer carries a
 * decision, so "200 granted" and the stored "granted" share a row; 202, 401, 409 and errors are
 * answers that carry none.
 */
export function outcomeRows(c: RushCounts): { label: string; answers: Cell; decisions: Cell }[] {
  const rows: { label: string; answers: Cell; decisions: Cell }[] = [];
  const decisionKeys = Object.keys(c.decisions.byDecision);
  for (const key of decisionKeys)
    rows.push({ label: key, answers: c.answers.byAnswer[`200 ${key}`] ?? 0, decisions: c.decisions.byDecision[key]! });
  for (const [key, n] of Object.entries(c.answers.byAnswer)) {
    if (key.startsWith("200 ") && decisionKeys.includes(key.slice(4))) continue;
    rows.push({
      label: key,
      answers: n,
      decisions: key.startsWith("200 ") ? 0 : "n/a (this answer carries no decision)",
    });
  }
  rows.push({ label: "total", answers: c.answers.total, decisions: c.decisions.total });
  return rows;
}

/** Why the two columns of outcomeRows differ, in one sentence. */
export const OUTCOME_NOTE =
  "Answers count every callback, so a resend answered again with its decision is counted again, and 202s, 401s and 409s are answers without a decision; decisions count stored rows, one per distinct attempt, those answered 202 and those of the reclaim wave after the refunds included.";

/** Refund answers in a fixed order, their total equal to the requests sent. */
export function refundRows(r: RefundCounts): [string, number][] {
  return [...Object.entries(r.answers).sort((a, b) => a[0].localeCompare(b[0])), ["total", r.requests]];
}

/** Whole numbers of four digits or more in free text (invariants' evidence) get thousands separators. */
export function withSeparators(text: string): string {
  return text.replace(
    /(?<![\w.\-/])(\d{4,})(\.\d+)?(?![\w\-/])/g,
    (_, whole: string, frac: string | undefined) => `${Number(whole).toLocaleString("en-US")}${frac ?? ""}`,
  );
}
