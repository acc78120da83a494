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
import { attemptKey, recordValues, type AttemptRow } from "./attempt-repo.js";
import { FencedOutError } from "./partition-repo.js";
import { insertImmediate, type ImmediateRecord } from "./record-immediate-batch.js";
import { refillInTx, type RefillResult } from "./refill-tx.js";
import { inTransaction } from "./transaction.js";

/**
 * One batch transaction of one partition.
 *
 * Inputs: the partition, the fencing epoch its owner holds, attempts in
 * arrival order. Steps, all in one READ COMMITTED transaction:
 *   1. in one statement: lock the partition row and read its epoch (a zombie
 *      stops here), lock and read the budget left of budget-capped campaigns
 *      among the attempts' (none for the others), read decisions already stored for these txns (replays,
 *      retries after a commit whose outcome was lost: answered, never
 *      re-decided), read which payers already hold a voucher (slot not
 *      released by a refund), lock this partition's share rows of the tiers
 *      involved and read (KEY SHARE) which tiers are marked empty everywhere;
 *   2. decide in memory, in order, until an attempt needs a refill;
 *   3. insert the decisions and decrement the shares (and capped budgets) in
 *      one statement; commit.
 * Lock order: partition row, then capped campaign rows by id, then own share
 * rows by (campaign, tier). Batch transactions never lock another partition's
 * share rows or the pool, so they wait only on refills (which lock no
 * campaign row) and, for a capped campaign, on each other's budget row, which
 * they take before any share: no cycle. Trade-off: batches of a capped
 * campaign are serialized across partitions on its budget row.
 *
 * The hot path uses named statements on a raw pg client (parsed once per
 * connection) and four round trips per batch: BEGIN, read, write, COMMIT.
 *
 * decideGroupTx runs steps 1-3 for several partitions of one owner in one
 * transaction, in partition order (so partition rows and share rows are
 * still locked in a global order), with the refills they need made inside
 * it, and commits once: a process that owns several partitions pays one WAL
 * flush per round, not one per partition and per refill.
 * Trade-off: a fenced partition aborts the round for all of them (the caller
 * drops that partition and runs the round again for the others).
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

// All reads of a batch in one round trip. The scalar subqueries run left to right: the partition
// row is locked first (fencing), then capped campaigns' budget rows by id, then this partition's
// share rows, in (campaign, tier) order, then a KEY SHARE lock on the tier rows marked sold out,
// held to commit: a refund clearing a mark (FOR UPDATE) waits for every batch that relied on it,
// and a batch that waited re-checks the mark on the row the refund left (see refund-tx.ts).
// Stored decisions are looked up one (acquirer, txn) pair at a time through the primary key
// (lateral): "acquirer = any() and txn = any()" was planned as an index scan on the acquirer
// alone, reading every attempt of the acquirer on each batch (O(table) per batch), and a plain
// join with unnest() as a hash join over the whole table. Payers and tiers are those of every
// attempt in the batch, a superset of the fresh ones: harmless, and it saves a round trip.
const READ = `
  with shares as (
    select s.campaign_id, s.tier_id, s.remaining
      from tier_shares s
      join unnest($5::text[], $6::text[]) as k(campaign_id, tier_id)
        on s.campaign_id = k.campaign_id and s.tier_id = k.tier_id
     where s.partition = $1
     order by s.campaign_id, s.tier_id
       for update of s),
  marked as (
    select t.campaign_id, t.id
      from tiers t
      join unnest($5::text[], $6::text[]) as k(campaign_id, tier_id)
        on t.campaign_id = k.campaign_id and t.id = k.tier_id
     where t.sold_out_at is not null
     order by t.campaign_id, t.id
       for key share of t)
  select (select epoch from partitions where partition = $1 for update) as epoch,
         (select coalesce(json_agg(json_build_array(c.id, c.budget_left_fen) order by c.id), '[]')
            from (select id, budget_left_fen from campaigns where id = any($5::text[]) and budget_capped order by id for update) c) as budgets,
         (select coalesce(json_agg(a), '[]')
            from unnest($2::text[], $3::text[]) as k(acquirer_id, txn_id)
            cross join lateral (select * from attempts x where x.acquirer_id = k.acquirer_id and x.txn_id = k.txn_id) a) as stored,
         (select coalesce(json_agg(json_build_array(h.campaign_id, h.activity_id, h.payer_id)), '[]')
            from attempts h where h.status = 'granted' and h.slot_released_at is null and h.payer_id = any($4::text[])) as holders,
         (select coalesce(json_agg(shares), '[]') from shares) as shares,
         (select coalesce(json_agg(json_build_array(m.campaign_id, m.id)), '[]') from marked m) as empty`;

const COLUMNS = ATTEMPT_COLUMNS;

// Insert every decision, take the used stock from this partition's shares and the discounts from
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
      from unnest($${COLUMNS.length + 1}::text[], $${COLUMNS.length + 2}::text[], $${COLUMNS.length + 3}::int[]) as u(campaign_id, tier_id, used)
     where s.campaign_id = u.campaign_id and s.tier_id = u.tier_id and s.partition = $${COLUMNS.length + 4}
    returning 1)
  insert into attempts (${COLUMNS.map(([c]) => c).join(", ")})
  select * from unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(", ")})
  returning *`;

export async function decideBatchTx(
  pool: pg.Pool,
  partition: number,
  epoch: number,
  attempts: readonly QueuedAttempt[],
  campaigns: ReadonlyMap<string, Campaign>,
): Promise<BatchTxOutcome> {
  return inTransaction(pool, (client) => decideInTx(client, partition, epoch, attempts, campaigns));
}

export interface PartitionBatch {
  partition: number;
  epoch: number;
  attempts: readonly QueuedAttempt[];
}

export interface GroupOutcome {
  /** Every attempt's result, batch after batch (refills made inside: nothing is left over). */
  results: BatchResult[];
  /** Rows of the decisions that needed no stock inserted by this transaction (see insertImmediate). */
  immediateRows: AttemptRow[];
  /** What each refill made inside the transaction did, in order. */
  refills: RefillResult[];
}

/** Refills one batch may make inside a group transaction: a tier is refilled only until it is marked empty. */
const REFILLS_PER_BATCH_MAX = 1_000;

/**
 * One transaction, one commit, for the batches of several partitions and then the decisions that
 * need no stock (records an ingress decided itself). Those go last: their KEY SHARE on marked
 * tier rows then comes after the batches' budget rows, the order a refund takes them in (budget,
 * then the tier row FOR UPDATE), so the two cannot wait on each other in a cycle. A batch whose
 * share runs dry refills it inside the transaction (refillInTx) and goes on deciding, so the
 * refill and what it unblocks commit together.
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
    for (const b of order) {
      let attempts = b.attempts;
      for (let n = 0; attempts.length > 0; n++) {
        invariant(n <= REFILLS_PER_BATCH_MAX, `partition ${b.partition}: refills did not converge`);
        const outcome = await decideInTx(client, b.partition, b.epoch, attempts, campaigns);
        results.push(...outcome.results);
        if (!outcome.refill) {
          invariant(outcome.rest.length === 0, "attempts left over without a refill");
          break;
        }
        const { campaignId, tierId } = outcome.refill;
        const need = outcome.rest.filter((a) => a.request.campaignId === campaignId && a.request.tierIds.includes(tierId)).length;
        refills.push(await refillInTx(client, b.partition, partitionCount, campaignId, tierId, need));
        attempts = outcome.rest;
      }
    }
    const immediateRows = await insertImmediate(client, immediate);
    return { results, immediateRows, refills };
  });
}

async function decideInTx(
  client: pg.PoolClient,
  partition: number,
  epoch: number,
  attempts: readonly QueuedAttempt[],
  campaigns: ReadonlyMap<string, Campaign>,
): Promise<BatchTxOutcome> {
  {
    const tiers = new Map<string, { campaignId: string; tierId: string }>();
    for (const a of attempts) for (const t of a.request.tierIds) tiers.set(tierKey(a.request.campaignId, t), { campaignId: a.request.campaignId, tierId: t });
    const read = (
      await client.query<{
        epoch: number;
        budgets: [string, number][];
        stored: JsonRow[];
        holders: [string, string, string][];
        shares: { campaign_id: string; tier_id: string; remaining: number }[];
        empty: [string, string][];
      }>({
        name: "batch_read",
        text: READ,
        values: [
          partition,
          attempts.map((a) => a.acquirerId),
          attempts.map((a) => a.payment.txnId),
          [...new Set(attempts.map((a) => a.payment.payerId))],
          [...tiers.values()].map((t) => t.campaignId),
          [...tiers.values()].map((t) => t.tierId),
        ],
      })
    ).rows[0]!;
    if (Number(read.epoch) !== epoch) throw new FencedOutError(`partition ${partition} moved on to epoch ${read.epoch}; this owner holds ${epoch}`, partition);

    const stored = new Map<string, AttemptRow>();
    for (const json of read.stored) {
      const row = fromJson(json);
      stored.set(attemptKey(row.acquirer_id, row.txn_id), row);
    }
    const holders = new Set(read.holders.map(([c, a, p]) => holderKey(c, a, p)));
    const share = new Map<string, number>();
    const empty = new Set<string>();
    for (const r of read.shares) share.set(tierKey(r.campaign_id, r.tier_id), r.remaining);
    for (const [campaignId, tierId] of read.empty) empty.add(tierKey(campaignId, tierId));
    // Budget-capped campaigns only (the row is locked, after the partition row, before the shares).
    const budgetLeft = new Map(read.budgets.map(([id, left]) => [id, Number(left)] as const));
    const state = { batch: { share, empty, holders, budgetLeft } satisfies BatchState, before: new Map(share), budgetBefore: new Map(budgetLeft) };

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

    const outcome = decideBatch(
      fresh.map((a) => ({ payerId: a.payment.payerId, amountFen: a.payment.amountFen, request: a.request })),
      state.batch,
      campaigns,
    );
    const decided = fresh.slice(0, outcome.decisions.length);
    const rest = fresh.slice(outcome.decisions.length);
    const restKeys = new Set(rest.map((a) => attemptKey(a.acquirerId, a.payment.txnId)));

    if (decided.length > 0) {
      const records = decided.map((a, i) => recordValues(toRecord(a, outcome.decisions[i]!)) as Record<string, unknown>);
      const used = [...state.batch.share].filter(([key, n]) => state.before.get(key) !== n);
      for (const [key, n] of used) invariant(state.before.get(key)! - n > 0, `share of ${key} grew inside a batch`);
      const spentBy = [...budgetLeft].filter(([id, left]) => state.budgetBefore.get(id) !== left);
      for (const [id, left] of spentBy) invariant(left >= 0 && state.budgetBefore.get(id)! - left > 0, `budget of ${id} went wrong inside a batch`);
      const written = await client.query<AttemptRow>({
        name: "batch_write",
        text: WRITE,
        values: [
          ...columnArrays(records),
          used.map(([key]) => key.slice(0, key.indexOf("/"))),
          used.map(([key]) => key.slice(key.indexOf("/") + 1)),
          used.map(([key, n]) => state.before.get(key)! - n),
          partition,
          spentBy.map(([id]) => id),
          spentBy.map(([id, left]) => state.budgetBefore.get(id)! - left),
        ],
      });
      invariant(written.rows.length === decided.length, `wrote ${written.rows.length} of ${decided.length} decisions`);
      const byKey = new Map(written.rows.map((r) => [attemptKey(r.acquirer_id, r.txn_id), r]));
      for (const a of decided) results.push({ kind: "decided", attempt: a, row: byKey.get(attemptKey(a.acquirerId, a.payment.txnId))!, fresh: true });
      for (const [key, row] of byKey) stored.set(key, row);
    }

    // Repeats of a txn inside this batch: answered from the first one, or carried over with it.
    for (const attempt of replays) {
      const key = attemptKey(attempt.acquirerId, attempt.payment.txnId);
      if (restKeys.has(key)) rest.push(attempt);
      else results.push(answerFromRow(attempt, stored.get(key)!, false));
    }
    return { results, rest, ...(outcome.refill ? { refill: outcome.refill } : {}) };
  }
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

type JsonRow = Omit<AttemptRow, "paid_at" | "received_at" | "decided_at"> & { paid_at: string; received_at: string; decided_at: string };

/** Rows read through json_agg carry timestamps as text: give them back their Date type. */
function fromJson(row: JsonRow): AttemptRow {
  return { ...row, paid_at: new Date(row.paid_at), received_at: new Date(row.received_at), decided_at: new Date(row.decided_at) };
}
