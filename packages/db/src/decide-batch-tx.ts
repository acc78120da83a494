import { sql, type Kysely } from "kysely";
import {
  decideBatch,
  holderKey,
  invariant,
  tierKey,
  type BatchState,
  type Campaign,
  type Decision,
  type QueuedAttempt,
} from "@quanta/domain";
import { attemptKey, findAttempts, recordValues, rowDecision, type AttemptRow } from "./attempt-repo.js";
import { assertEpoch } from "./partition-repo.js";
import type { Database } from "./schema.js";

/**
 * One batch transaction of one partition.
 *
 * Inputs: the partition, the fencing epoch its owner holds, attempts in
 * arrival order. Steps, all in one READ COMMITTED transaction:
 *   1. lock the partition row and check the epoch (a zombie stops here);
 *   2. read decisions already stored for these txns (replays, retries after
 *      a commit whose outcome was lost): they are answered, never re-decided;
 *   3. read which payers already hold a voucher, lock this partition's share
 *      rows of the tiers involved, read which tiers are empty everywhere;
 *   4. decide in memory, in order, until an attempt needs a refill;
 *   5. insert the decisions and decrement the shares; commit.
 * Lock order: partition row, then own share rows by (campaign, tier). Batch
 * transactions never lock another partition's rows or the pool, so they wait
 * only on refills, which never wait on a batch holding a lower-ordered lock.
 */
export type BatchResult =
  | { kind: "decided"; attempt: QueuedAttempt; row: AttemptRow; fresh: boolean }
  | { kind: "conflict"; attempt: QueuedAttempt; row: AttemptRow };

export interface BatchTxOutcome {
  results: BatchResult[];
  /** Attempts not decided because a share must be refilled first (in order). */
  rest: QueuedAttempt[];
  refill?: { campaignId: string; tierId: string };
}

export async function decideBatchTx(
  db: Kysely<Database>,
  partition: number,
  epoch: number,
  attempts: readonly QueuedAttempt[],
  campaigns: ReadonlyMap<string, Campaign>,
): Promise<BatchTxOutcome> {
  return db.transaction().execute(async (trx) => {
    await assertEpoch(trx, partition, epoch);

    const stored = new Map<string, AttemptRow>();
    for (const row of await findAttempts(trx, attempts.map((a) => ({ acquirerId: a.acquirerId, txnId: a.payment.txnId })))) {
      stored.set(attemptKey(row.acquirer_id, row.txn_id), row);
    }

    // Attempts already decided (or repeated within this batch) are answered from the stored decision.
    const results: BatchResult[] = [];
    const fresh: QueuedAttempt[] = [];
    const freshKeys = new Set<string>();
    const replays: QueuedAttempt[] = [];
    for (const attempt of attempts) {
      invariant(attempt.partition === partition, `attempt queued to partition ${attempt.partition} reached ${partition}`);
      const key = attemptKey(attempt.acquirerId, attempt.payment.txnId);
      const row = stored.get(key);
      if (row) results.push(answerFromRow(attempt, row, false));
      else if (freshKeys.has(key)) replays.push(attempt);
      else {
        freshKeys.add(key);
        fresh.push(attempt);
      }
    }

    const state = await readState(trx, partition, fresh);
    const outcome = decideBatch(
      fresh.map((a) => ({ payerId: a.payment.payerId, amountFen: a.payment.amountFen, request: a.request })),
      state.batch,
      campaigns,
    );
    const decided = fresh.slice(0, outcome.decisions.length);
    const rest = fresh.slice(outcome.decisions.length);
    const restKeys = new Set(rest.map((a) => attemptKey(a.acquirerId, a.payment.txnId)));

    if (decided.length > 0) {
      const rows = await trx
        .insertInto("attempts")
        .values(decided.map((a, i) => recordValues(toRecord(a, outcome.decisions[i]!))))
        .returningAll()
        .execute();
      const byKey = new Map(rows.map((r) => [attemptKey(r.acquirer_id, r.txn_id), r]));
      for (const a of decided) results.push({ kind: "decided", attempt: a, row: byKey.get(attemptKey(a.acquirerId, a.payment.txnId))!, fresh: true });
      for (const r of rows) stored.set(attemptKey(r.acquirer_id, r.txn_id), r);
      await writeShares(trx, partition, state.before, state.batch.share);
    }

    // Repeats of a txn inside this batch: answered from the first one, or carried over with it.
    for (const attempt of replays) {
      const key = attemptKey(attempt.acquirerId, attempt.payment.txnId);
      if (restKeys.has(key)) rest.push(attempt);
      else results.push(answerFromRow(attempt, stored.get(key)!, false));
    }
    return { results, rest, ...(outcome.refill ? { refill: outcome.refill } : {}) };
  });
}

function answerFromRow(attempt: QueuedAttempt, row: AttemptRow, fresh: boolean): BatchResult {
  return row.body_hash === attempt.bodyHash ? { kind: "decided", attempt, row, fresh } : { kind: "conflict", attempt, row };
}

function toRecord(a: QueuedAttempt, decision: Decision) {
  return {
    acquirerId: a.acquirerId,
    bodyHash: a.bodyHash,
    payment: a.payment,
    receivedAtMs: a.receivedAtMs,
    partition: a.partition,
    decision,
    decidedBy: "worker" as const,
  };
}

async function readState(trx: Kysely<Database>, partition: number, attempts: readonly QueuedAttempt[]) {
  const tiers = new Map<string, { campaignId: string; tierId: string }>();
  for (const a of attempts) for (const t of a.request.tierIds) tiers.set(tierKey(a.request.campaignId, t), { campaignId: a.request.campaignId, tierId: t });
  const campaignIds = [...tiers.values()].map((t) => t.campaignId);
  const tierIds = [...tiers.values()].map((t) => t.tierId);

  const holders = new Set<string>();
  const share = new Map<string, number>();
  const empty = new Set<string>();
  if (attempts.length === 0) return { batch: { share, empty, holders } satisfies BatchState, before: new Map<string, number>() };

  const holderRows = await sql<{ campaign_id: string; activity_id: string; payer_id: string }>`
    select a.campaign_id, a.activity_id, a.payer_id
      from attempts a
      join unnest(${attempts.map((x) => x.request.campaignId)}::text[], ${attempts.map((x) => x.request.activityId)}::text[],
                  ${attempts.map((x) => x.payment.payerId)}::text[]) as k(campaign_id, activity_id, payer_id)
        on a.campaign_id = k.campaign_id and a.activity_id = k.activity_id and a.payer_id = k.payer_id
     where a.status = 'granted'`.execute(trx);
  for (const r of holderRows.rows) holders.add(holderKey(r.campaign_id, r.activity_id, r.payer_id));

  const shareRows = await sql<{ campaign_id: string; tier_id: string; remaining: number }>`
    select s.campaign_id, s.tier_id, s.remaining
      from tier_shares s
      join unnest(${campaignIds}::text[], ${tierIds}::text[]) as k(campaign_id, tier_id)
        on s.campaign_id = k.campaign_id and s.tier_id = k.tier_id
     where s.partition = ${partition}
     order by s.campaign_id, s.tier_id
       for update of s`.execute(trx);
  for (const r of shareRows.rows) share.set(tierKey(r.campaign_id, r.tier_id), r.remaining);

  const emptyRows = await sql<{ campaign_id: string; id: string }>`
    select t.campaign_id, t.id
      from tiers t
      join unnest(${campaignIds}::text[], ${tierIds}::text[]) as k(campaign_id, tier_id)
        on t.campaign_id = k.campaign_id and t.id = k.tier_id
     where t.sold_out_at is not null`.execute(trx);
  for (const r of emptyRows.rows) empty.add(tierKey(r.campaign_id, r.id));

  return { batch: { share, empty, holders } satisfies BatchState, before: new Map(share) };
}

async function writeShares(trx: Kysely<Database>, partition: number, before: Map<string, number>, after: Map<string, number>) {
  const changed = [...after].filter(([key, n]) => before.get(key) !== n);
  if (changed.length === 0) return;
  const campaignIds = changed.map(([key]) => key.slice(0, key.indexOf("/")));
  const tierIds = changed.map(([key]) => key.slice(key.indexOf("/") + 1));
  const used = changed.map(([key, n]) => before.get(key)! - n);
  for (const n of used) invariant(n > 0, `share grew inside a batch: ${n}`);
  // A delta, not an absolute value: the CHECK (remaining >= 0) backstops any arithmetic slip.
  await sql`
    update tier_shares s set remaining = s.remaining - k.used
      from unnest(${campaignIds}::text[], ${tierIds}::text[], ${used}::int[]) as k(campaign_id, tier_id, used)
     where s.campaign_id = k.campaign_id and s.tier_id = k.tier_id and s.partition = ${partition}`.execute(trx);
}
