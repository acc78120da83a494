import { sql, type Kysely } from "kysely";
import type { Database } from "@quanta/db";
import { percentiles, type SentRecord } from "@quanta/loadtest";

/**
 * The rush per second, for the report's charts. Every series is per second of the run, rebuilt
 * afterwards from what the load generator saw (answers, answer latency) and what Postgres stored
 * (decision latency, grants per tier, attempts queued and not yet decided, from each attempt's
 * received and decided instants): nothing has to be sampled while the load runs.
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
