import type pg from "pg";
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
import { ATTEMPT_COLUMNS, columnArrays } from "./attempt-columns.js";
import { attemptKey, decisionColumnList, recordValues, type DecisionRow } from "./attempt-repo.js";
import { FencedOutError } from "./partition-repo.js";
import { insertImmediate, type ImmediateRecord } from "./record-immediate-batch.js";
import { refillInTx, type RefillResult } from "./refill-tx.js";
import { inTransaction } from "./transaction.js";

/**
 * Batch transactions of partition owners.
 *
 * Inputs: batches of several partitions (each with the fencing epoch its
 * owner holds, attempts in arrival order). A pass, in one READ COMMITTED
 * transaction and two round trips whatever the number of partitions:
 *   1. one statement reads for every batch at once: lock the partition rows
 *      and read their epochs (a zombie stops here), lock and read the budget
 *      left of budget-capped campaigns among the attempts' (none for the
 *      others), read decisions already stored for these txns (replays,
 *      retries after a commit whose outcome was lost: answered, never
 *      re-decided), read which payers already hold a voucher (slot not
 *      released by a refund), lock the share rows of the partitions and tiers
 *      involved and read (KEY SHARE) which tiers are marked empty everywhere;
 *   2. decide in memory, partition after partition in partition order, each
 *      in arrival order until an attempt needs a refill (budgets carried from
 *      one partition to the next);
 *   3. one statement inserts every decision and takes the used stock from the
 *      shares (and the discounts from capped budgets).
 * Lock order: partition rows by number, then capped campaign rows by id, then
 * share rows by (partition, campaign, tier), then KEY SHARE on marked tier
 * rows. Batch transactions never lock another owner's partition or share
 * rows or the pool, so they wait only on refills (which lock no campaign row)
 * and, for a capped campaign, on each other's budget row, which they take
 * before any share: no cycle. Trade-off: batches of a capped campaign are
 * serialized across owners on its budget row.
 *
 * decideGroupTx runs passes until every attempt is decided: after a pass, the
 * partitions that need a refill get it inside the same transaction
 * (refillInTx) and the next pass takes what they had left. Then it stores the
 * decisions that need no stock and commits once: an owner pays one WAL flush
 * and about five round trips per round (BEGIN, read, write, the immediate
 * decisions, COMMIT), not two per partition and one commit per refill.
 * Trade-off: a fenced partition aborts the round for all of them (the caller
 * drops that partition and runs the round again for the others).
 *
 * The hot path uses named statements on a raw pg client (parsed once per
 * connection).
 */
export type BatchResult =
  | { kind: "decided"; attempt: QueuedAttempt; row: DecisionRow; fresh: boolean }
  | { kind: "conflict"; attempt: QueuedAttempt; row: DecisionRow };

export interface BatchTxOutcome {
  results: BatchResult[];
  /** Attempts not decided because a share must be refilled first (in order). */
  rest: QueuedAttempt[];
  refill?: { campaignId: string; tierId: string };
}

// All reads of a pass in one round trip. The scalar subqueries run left to right: the partition
// rows are locked first (fencing), then capped campaigns' budget rows by id, then the share rows,
// in (partition, campaign, tier) order, then a KEY SHARE lock on the tier rows marked sold out,
// held to commit: a refund clearing a mark (FOR UPDATE) waits for every batch that relied on it,
// and a batch that waited re-checks the mark on the row the refund left (see refund-tx.ts).
// Stored decisions are looked up one (acquirer, txn) pair at a time through the primary key
// (lateral): "acquirer = any() and txn = any()" was planned as an index scan on the acquirer
// alone, reading every attempt of the acquirer on each batch (O(table) per batch), and a plain
// join with unnest() as a hash join over the whole table. Holders likewise: one lookup per
// (payer, campaign, activity) through the one-grant-per-payer index, every column given, and a
// "limit 1" (the index allows one row anyway) that keeps the planner from turning the lateral into
// a hash join over every grant when it believes there are none. With "payer_id = any()" alone,
// and statistics not yet caught up with a rush's grants (autovacuum analyses minutes behind), the
// planner read every grant through the by-tier index instead and filtered them: 2.5 ms per
// partition per batch at 10,000 grants, growing with the campaign, which halved the ingress's
// rate. Payers and tiers are those of every attempt in the pass, a superset of the fresh ones:
// harmless, and it saves a round trip. Exported for its plan test (batch-read-plan.test.ts).
export const BATCH_READ_SQL = `
  with shares as (
    select s.partition, s.campaign_id, s.tier_id, s.remaining
      from tier_shares s
      join unnest($1::int[], $2::text[], $3::text[]) as k(partition, campaign_id, tier_id)
        on s.partition = k.partition and s.campaign_id = k.campaign_id and s.tier_id = k.tier_id
     order by s.partition, s.campaign_id, s.tier_id
       for update of s),
  marked as (
    select t.campaign_id, t.id
      from tiers t
     where t.sold_out_at is not null
       and (t.campaign_id, t.id) in (select k.campaign_id, k.tier_id from unnest($2::text[], $3::text[]) as k(campaign_id, tier_id))
     order by t.campaign_id, t.id
       for key share of t)
  select (select coalesce(json_agg(json_build_array(p.partition, p.epoch)), '[]')
            from (select partition, epoch from partitions where partition = any($4::int[]) order by partition for update) p) as epochs,
         (select coalesce(json_agg(json_build_array(c.id, c.budget_left_fen) order by c.id), '[]')
            from (select id, budget_left_fen from campaigns where id = any($2::text[]) and budget_capped order by id for update) c) as budgets,
         (select coalesce(json_agg(a), '[]')
            from unnest($5::text[], $6::text[]) as k(acquirer_id, txn_id)
            cross join lateral (select ${decisionColumnList("x")} from attempts x where x.acquirer_id = k.acquirer_id and x.txn_id = k.txn_id) a) as stored,
         (select coalesce(json_agg(json_build_array(h.campaign_id, h.activity_id, h.payer_id)), '[]')
            from unnest($7::text[], $8::text[], $9::text[]) as p(payer_id, campaign_id, activity_id)
            cross join lateral (select h.campaign_id, h.activity_id, h.payer_id from attempts h
                                 where h.payer_id = p.payer_id and h.campaign_id = p.campaign_id and h.activity_id = p.activity_id
                                   and h.status = 'granted' and h.slot_released_at is null limit 1) h) as holders,
         (select coalesce(json_agg(shares), '[]') from shares) as shares,
         (select coalesce(json_agg(json_build_array(m.campaign_id, m.id)), '[]') from marked m) as empty`;

const COLUMNS = ATTEMPT_COLUMNS;

// Insert every decision of the pass, take the used stock from the shares and the discounts from
// budget-capped campaigns' budgets, in one statement. The decrements are deltas, so the CHECKs
// (remaining >= 0, budget_left_fen >= 0) backstop any arithmetic slip.
const WRITE = `
  with spent as (
    update campaigns c set budget_left_fen = c.budget_left_fen - b.spent
      from unnest($${COLUMNS.length + 5}::text[], $${COLUMNS.length + 6}::bigint[]) as b(id, spent)
     where c.id = b.id and c.budget_capped
    returning 1),
  used as (
    update tier_shares s set remaining = s.remaining - u.used
      from unnest($${COLUMNS.length + 1}::int[], $${COLUMNS.length + 2}::text[], $${COLUMNS.length + 3}::text[], $${COLUMNS.length + 4}::int[])
             as u(partition, campaign_id, tier_id, used)
     where s.partition = u.partition and s.campaign_id = u.campaign_id and s.tier_id = u.tier_id
    returning 1)
  insert into attempts (${COLUMNS.map(([c]) => c).join(", ")})
  select * from unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(", ")})
  returning ${decisionColumnList()}`;

export interface PartitionBatch {
  partition: number;
  epoch: number;
  attempts: readonly QueuedAttempt[];
}

/** One pass for one partition, without refills (the caller refills and calls again). */
export async function decideBatchTx(
  pool: pg.Pool,
  partition: number,
  epoch: number,
  attempts: readonly QueuedAttempt[],
  campaigns: ReadonlyMap<string, Campaign>,
): Promise<BatchTxOutcome> {
  return inTransaction(pool, async (client) => (await decidePass(client, [{ partition, epoch, attempts }], campaigns)).get(partition)!);
}

export interface GroupOutcome {
  /** Every attempt's result, batch after batch (refills made inside: nothing is left over). */
  results: BatchResult[];
  /** Rows of the decisions that needed no stock inserted by this transaction (see insertImmediate). */
  immediateRows: DecisionRow[];
  /** What each refill made inside the transaction did, in order. */
  refills: RefillResult[];
}

/** Passes one group transaction may make: a tier is refilled only until it is marked empty. */
const PASSES_MAX = 1_000;

/**
 * One transaction, one commit, for the batches of several partitions and then the decisions that
 * need no stock (records an ingress decided itself). Those go last: their KEY SHARE on marked
 * tier rows then comes after the batches' budget rows, the order a refund takes them in (budget,
 * then the tier row FOR UPDATE), so the two cannot wait on each other in a cycle. A batch whose
 * share runs dry refills it inside the transaction (refillInTx) and goes on deciding in the next
 * pass, so the refill and what it unblocks commit together.
 */
export async function decideGroupTx(
  pool: pg.Pool,
  batches: readonly PartitionBatch[],
  campaigns: ReadonlyMap<string, Campaign>,
  partitionCount: number,
  immediate: readonly ImmediateRecord[] = [],
): Promise<GroupOutcome> {
  const order = [...batches].sort((a, b) => a.partition - b.partition);
  for (let i = 1; i < order.length; i++) invariant(order[i]!.partition !== order[i - 1]!.partition, "two batches of one partition in a group");
  return inTransaction(pool, async (client) => {
    const results: BatchResult[] = [];
    const refills: RefillResult[] = [];
    let todo = order.filter((b) => b.attempts.length > 0);
    for (let n = 0; todo.length > 0; n++) {
      invariant(n <= PASSES_MAX, "refills did not converge");
      const outcomes = await decidePass(client, todo, campaigns);
      const next: PartitionBatch[] = [];
      for (const b of todo) {
        const outcome = outcomes.get(b.partition)!;
        results.push(...outcome.results);
        if (!outcome.refill) {
          invariant(outcome.rest.length === 0, "attempts left over without a refill");
          continue;
        }
        const { campaignId, tierId } = outcome.refill;
        const need = outcome.rest.filter((a) => a.request.campaignId === campaignId && a.request.tierIds.includes(tierId)).length;
        refills.push(await refillInTx(client, b.partition, partitionCount, campaignId, tierId, need));
        next.push({ partition: b.partition, epoch: b.epoch, attempts: outcome.rest });
      }
      todo = next;
    }
    const immediateRows = await insertImmediate(client, immediate);
    return { results, immediateRows, refills };
  });
}

/** Steps 1-3 for several partitions (in partition order, each at most once): two round trips. */
async function decidePass(
  client: pg.PoolClient,
  batches: readonly PartitionBatch[],
  campaigns: ReadonlyMap<string, Campaign>,
): Promise<Map<number, BatchTxOutcome>> {
  const shareKeys = new Map<string, { partition: number; campaignId: string; tierId: string }>();
  const holderByKey = new Map<string, { payerId: string; campaignId: string; activityId: string }>();
  const all: QueuedAttempt[] = [];
  for (const b of batches) {
    for (const a of b.attempts) {
      invariant(a.partition === b.partition, `attempt queued to partition ${a.partition} reached ${b.partition}`);
      all.push(a);
      for (const t of a.request.tierIds) shareKeys.set(`${b.partition}:${tierKey(a.request.campaignId, t)}`, { partition: b.partition, campaignId: a.request.campaignId, tierId: t });
      const key = holderKey(a.request.campaignId, a.request.activityId, a.payment.payerId);
      if (!holderByKey.has(key)) holderByKey.set(key, { payerId: a.payment.payerId, campaignId: a.request.campaignId, activityId: a.request.activityId });
    }
  }
  const shareList = [...shareKeys.values()];
  const holderList = [...holderByKey.values()];
  const read = (
    await client.query<{
      epochs: [number, number][];
      budgets: [string, number][];
      stored: DecisionRow[];
      holders: [string, string, string][];
      shares: { partition: number; campaign_id: string; tier_id: string; remaining: number }[];
      empty: [string, string][];
    }>({
      name: "batch_read",
      text: BATCH_READ_SQL,
      values: [
        shareList.map((k) => k.partition),
        shareList.map((k) => k.campaignId),
        shareList.map((k) => k.tierId),
        batches.map((b) => b.partition),
        all.map((a) => a.acquirerId),
        all.map((a) => a.payment.txnId),
        holderList.map((h) => h.payerId),
        holderList.map((h) => h.campaignId),
        holderList.map((h) => h.activityId),
      ],
    })
  ).rows[0]!;
  const epochs = new Map(read.epochs.map(([p, e]) => [Number(p), Number(e)] as const));
  for (const b of batches) {
    if (epochs.get(b.partition) !== b.epoch) {
      throw new FencedOutError(`partition ${b.partition} moved on to epoch ${epochs.get(b.partition)}; this owner holds ${b.epoch}`, b.partition);
    }
  }

  const stored = new Map<string, DecisionRow>();
  for (const row of read.stored) stored.set(attemptKey(row.acquirer_id, row.txn_id), row);
  const holders = new Set(read.holders.map(([c, a, p]) => holderKey(c, a, p)));
  const empty = new Set(read.empty.map(([campaignId, tierId]) => tierKey(campaignId, tierId)));
  const shares = new Map<number, Map<string, number>>(batches.map((b) => [b.partition, new Map()]));
  for (const r of read.shares) shares.get(Number(r.partition))!.set(tierKey(r.campaign_id, r.tier_id), r.remaining);
  // Budget-capped campaigns only (the rows are locked, after the partition rows, before the shares),
  // carried from one partition to the next.
  const budgetLeft = new Map(read.budgets.map(([id, left]) => [id, Number(left)] as const));
  const budgetBefore = new Map(budgetLeft);

  const outcomes = new Map<number, BatchTxOutcome>();
  const records: Record<string, unknown>[] = [];
  const decidedAll: QueuedAttempt[] = [];
  const used: { partition: number; key: string; n: number }[] = [];
  const replaysOf = new Map<number, QueuedAttempt[]>();
  for (const b of batches) {
    const share = shares.get(b.partition)!;
    const before = new Map(share);
    // Attempts already decided (or repeated within this batch) are answered from the stored decision.
    const results: BatchResult[] = [];
    const fresh: QueuedAttempt[] = [];
    const freshKeys = new Set<string>();
    const replays: QueuedAttempt[] = [];
    for (const attempt of b.attempts) {
      const key = attemptKey(attempt.acquirerId, attempt.payment.txnId);
      const row = stored.get(key);
      if (row) results.push(answerFromRow(attempt, row, false));
      else if (freshKeys.has(key)) replays.push(attempt);
      else {
        freshKeys.add(key);
        fresh.push(attempt);
      }
    }
    const outcome = decideBatch(
      fresh.map((a) => ({ payerId: a.payment.payerId, amountFen: a.payment.amountFen, request: a.request })),
      { share, empty, holders, budgetLeft } satisfies BatchState,
      campaigns,
    );
    const decided = fresh.slice(0, outcome.decisions.length);
    decided.forEach((a, i) => records.push(recordValues(toRecord(a, outcome.decisions[i]!)) as Record<string, unknown>));
    decidedAll.push(...decided);
    for (const [key, n] of share) {
      if (before.get(key) === n) continue;
      invariant(before.get(key)! - n > 0, `share of ${key} grew inside a batch`);
      used.push({ partition: b.partition, key, n: before.get(key)! - n });
    }
    replaysOf.set(b.partition, replays);
    outcomes.set(b.partition, { results, rest: fresh.slice(outcome.decisions.length), ...(outcome.refill ? { refill: outcome.refill } : {}) });
  }

  if (records.length > 0) {
    const spentBy = [...budgetLeft].filter(([id, left]) => budgetBefore.get(id) !== left);
    for (const [id, left] of spentBy) invariant(left >= 0 && budgetBefore.get(id)! - left > 0, `budget of ${id} went wrong inside a batch`);
    const written = await client.query<DecisionRow>({
      name: "batch_write",
      text: WRITE,
      values: [
        ...columnArrays(records),
        used.map((u) => u.partition),
        used.map((u) => u.key.slice(0, u.key.indexOf("/"))),
        used.map((u) => u.key.slice(u.key.indexOf("/") + 1)),
        used.map((u) => u.n),
        spentBy.map(([id]) => id),
        spentBy.map(([id, left]) => budgetBefore.get(id)! - left),
      ],
    });
    invariant(written.rows.length === records.length, `wrote ${written.rows.length} of ${records.length} decisions`);
    for (const r of written.rows) stored.set(attemptKey(r.acquirer_id, r.txn_id), r);
    for (const a of decidedAll) {
      outcomes.get(a.partition)!.results.push({ kind: "decided", attempt: a, row: stored.get(attemptKey(a.acquirerId, a.payment.txnId))!, fresh: true });
    }
  }

  // Repeats of a txn inside a batch: answered from the first one, or carried over with it.
  for (const b of batches) {
    const outcome = outcomes.get(b.partition)!;
    const restKeys = new Set(outcome.rest.map((a) => attemptKey(a.acquirerId, a.payment.txnId)));
    for (const attempt of replaysOf.get(b.partition)!) {
      const key = attemptKey(attempt.acquirerId, attempt.payment.txnId);
      if (restKeys.has(key)) outcome.rest.push(attempt);
      else outcome.results.push(answerFromRow(attempt, stored.get(key)!, false));
    }
  }
  return outcomes;
}

function answerFromRow(attempt: QueuedAttempt, row: DecisionRow, fresh: boolean): BatchResult {
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
