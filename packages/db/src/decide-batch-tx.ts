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
import {
  immediateInsertCtes,
  immediateInsertValues,
  insertImmediate,
  uniqueByTxn,
  type ImmediateRecord,
} from "./record-immediate-batch.js";
import { refillInTx, type RefillResult } from "./refill-tx.js";
import { inPipelinedTransaction, type PipelinedTx } from "./transaction.js";

/**
 * Batch transactions of partition owners.
 *
 * Inputs: batches of several partitions (each with the fencing epoch its
 * owner holds, attempts in arrival order), and the decisions an ingress made
 * itself without stock. A round, in one READ COMMITTED transaction:
 *   1. one statement reads for every batch at once: lock the partition rows
 *      and read their epochs (a zombie stops here), lock and read the budget
 *      left of budget-capped campaigns among the attempts' (none for the
 *      others), read decisions already stored for these txns (replays,
 *      retries after a commit whose outcome was lost: answered, never
 *      re-decided), read which payers already hold a voucher (slot not
 *      released by a refund), lock the share rows of the partitions and tiers
 *      involved and read (KEY SHARE) which tiers are marked empty everywhere;
 *   2. decide in memory every attempt of the round in arrival order, whatever
 *      its partition, against the stock the round's partitions hold together
 *      (each grant taken from its own partition's share while that holds any),
 *      until an attempt needs a refill: the tier is refilled (refillInTx: two
 *      to four statements, the share use decided so far applied first) and
 *      deciding goes on from that attempt, in memory again: nothing is read
 *      twice;
 *   3. one statement inserts every decision of the round, takes the used
 *      stock from the shares and the discounts from capped budgets, and
 *      stores the decisions that need no stock.
 * States of an attempt in a round: stored before (answered from its row), a
 * repeat of one in the round (answered from the first copy's row), pending
 * (not decided yet) -> decided in memory -> written.
 * Lock order: partition rows by number, then capped campaign rows by id, then
 * share rows by (partition, campaign, tier), then KEY SHARE on marked tier
 * rows; a refill then locks its tier row (and, sweeping, other partitions'
 * shares); the final write takes KEY SHARE on the tier rows the ingress's
 * sold_outs rely on, after every budget row, the order a refund takes them
 * in (budget, then the tier row FOR UPDATE), so the two cannot wait on each
 * other in a cycle. Batch transactions never lock another owner's partition
 * rows, so they wait only on refills (which lock no campaign row) and, for a
 * capped campaign, on each other's budget row, which they take before any
 * share: no cycle. Trade-offs: batches of a capped campaign are serialized
 * across owners on its budget row; a fenced partition aborts the round for
 * all of them (the caller drops that partition and runs the round again for
 * the others); a grant may come out of another partition's share (of the
 * same owner, in the same round). In exchange a tier runs dry for an owner
 * only when all of its partitions' shares are empty, a round decides in
 * arrival order across partitions (no inversion inside a round), and an
 * owner pays one WAL flush and two round trips per round (BEGIN with the
 * read, the write with COMMIT: inPipelinedTransaction) plus two to four per
 * refill, where a refill per dry partition share, a read and a write again
 * after each, a statement of their own for the ingress's decisions, and
 * BEGIN and COMMIT on their own cost three to five times that in the opening
 * minute. A round with no batch (the ingress's decisions alone) is one
 * statement, its own transaction.
 *
 * The hot path uses named statements on a raw pg client (parsed once per
 * connection).
 */
export type BatchResult =
  | { kind: "decided"; attempt: QueuedAttempt; row: DecisionRow; fresh: boolean }
  | { kind: "conflict"; attempt: QueuedAttempt; row: DecisionRow };

// All reads of a round in one round trip. The scalar subqueries run left to right: the partition
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
const N = COLUMNS.length;

// The round's one write: every decision it made, the used stock taken from the shares and the
// discounts from budget-capped campaigns' budgets, and the ingress's decisions that need no stock
// (immediateInsertCtes, which takes KEY SHARE on the marked tier rows its sold_outs rely on). The
// decrements are deltas, so the CHECKs (remaining >= 0, budget_left_fen >= 0) backstop any
// arithmetic slip. The two inserts never hold the same txn (the caller keeps a round's txns out of
// its immediate records), and the immediate holder check cannot see this statement's grants (one
// snapshot): the caller checks those in memory.
const WRITE = `
  with spent as (
    update campaigns c set budget_left_fen = c.budget_left_fen - b.spent
      from unnest($${N + 5}::text[], $${N + 6}::bigint[]) as b(id, spent)
     where c.id = b.id and c.budget_capped
    returning 1),
  used as (
    update tier_shares s set remaining = s.remaining - u.used
      from unnest($${N + 1}::int[], $${N + 2}::text[], $${N + 3}::text[], $${N + 4}::int[])
             as u(partition, campaign_id, tier_id, used)
     where s.partition = u.partition and s.campaign_id = u.campaign_id and s.tier_id = u.tier_id
    returning 1),
  decided as (
    insert into attempts (${COLUMNS.map(([c]) => c).join(", ")})
    select * from unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(", ")})
    returning ${decisionColumnList()}),
  ${immediateInsertCtes(N + 6)}
  select false as immediate, d.* from decided d
  union all
  select true as immediate, i.* from imm i
  union all
  select true as immediate, b.* from imm_before b`;

export interface PartitionBatch {
  partition: number;
  epoch: number;
  attempts: readonly QueuedAttempt[];
}

export interface GroupOutcome {
  /** Every attempt's result, batch after batch (refills made inside: nothing is left over). */
  results: BatchResult[];
  /** Rows of the decisions that needed no stock: inserted by this transaction, or stored before by another copy. */
  immediateRows: DecisionRow[];
  /** What each refill made inside the transaction did, in order. */
  refills: RefillResult[];
}

/** Refill steps one round may take: a tier is refilled only until it is marked empty. */
const REFILL_STEPS_MAX = 1_000;

/**
 * One transaction, one commit, for the batches of several partitions and the decisions that need
 * no stock (records an ingress decided itself). A tier that runs dry for the round's partitions is
 * refilled inside the transaction and deciding goes on, so the refill and what it unblocks commit
 * together.
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
  const live = order.filter((b) => b.attempts.length > 0);
  if (live.length === 0) {
    // The ingress's decisions alone: one statement, its own transaction (no BEGIN and COMMIT round trips).
    return { results: [], immediateRows: await insertImmediate(pool, immediate), refills: [] };
  }
  return inPipelinedTransaction(pool, async (tx) => {
    const round = await readRound(tx, live, campaigns);
    const refills: RefillResult[] = [];
    for (let need = decidePending(round, campaigns), steps = 0; need; need = decidePending(round, campaigns), steps++) {
      invariant(steps <= REFILL_STEPS_MAX, "refills did not converge");
      refills.push(await refill(tx.client, round, need, partitionCount));
    }
    const { results, immediateRows } = await writeRound(tx, round, immediate);
    return { results, immediateRows, refills };
  });
}

/** What a round knows after its read, and what it has decided in memory since. */
interface Round {
  readonly partitions: readonly number[];
  /** Every attempt of the round by partition, as given (for the results, in order). */
  readonly attempts: ReadonlyMap<number, readonly QueuedAttempt[]>;
  /** Fresh attempts not decided yet, every partition's, in arrival order. */
  pending: QueuedAttempt[];
  /** Rows stored before the round (by attemptKey), then the round's own once written. */
  readonly stored: Map<string, DecisionRow>;
  readonly holders: Set<string>;
  readonly empty: Set<string>;
  /** Shares as decided in memory, and as they stand in Postgres, by partition then tierKey. */
  readonly shares: Map<number, Map<string, number>>;
  /** The round's partitions' shares added up, by tierKey: the stock the round decides against. */
  readonly combined: Map<string, number>;
  readonly written: Map<number, Map<string, number>>;
  readonly budgetLeft: Map<string, number>;
  readonly budgetBefore: ReadonlyMap<string, number>;
  /** The round's fresh decisions, in the order made. */
  readonly decided: { attempt: QueuedAttempt; decision: Decision }[];
}

interface RefillNeed {
  partition: number;
  campaignId: string;
  tierId: string;
  /** Pending attempts of the partition that this tier could serve. */
  need: number;
}

/** Step 1: the round's one read (fencing, budgets, stored decisions, holders, shares, marks). */
async function readRound(tx: PipelinedTx, batches: readonly PartitionBatch[], campaigns: ReadonlyMap<string, Campaign>): Promise<Round> {
  const tiers = new Map<string, { campaignId: string; tierId: string }>();
  const holderByKey = new Map<string, { payerId: string; campaignId: string; activityId: string }>();
  const all: QueuedAttempt[] = [];
  for (const b of batches) {
    for (const a of b.attempts) {
      invariant(a.partition === b.partition, `attempt queued to partition ${a.partition} reached ${b.partition}`);
      invariant(campaigns.has(a.request.campaignId), `attempt names unknown campaign ${a.request.campaignId}`);
      all.push(a);
      for (const t of a.request.tierIds) tiers.set(tierKey(a.request.campaignId, t), { campaignId: a.request.campaignId, tierId: t });
      const key = holderKey(a.request.campaignId, a.request.activityId, a.payment.payerId);
      if (!holderByKey.has(key)) holderByKey.set(key, { payerId: a.payment.payerId, campaignId: a.request.campaignId, activityId: a.request.activityId });
    }
  }
  // Every partition of the round, every tier its attempts name: the stock the round holds together.
  const shareList = batches.flatMap((b) => [...tiers.values()].map((t) => ({ partition: b.partition, ...t })));
  const holderList = [...holderByKey.values()];
  const read = (
    await tx.begin<{
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
  const shares = new Map<number, Map<string, number>>(batches.map((b) => [b.partition, new Map()]));
  for (const r of read.shares) shares.get(Number(r.partition))!.set(tierKey(r.campaign_id, r.tier_id), r.remaining);
  // Budget-capped campaigns only (the rows are locked, after the partition rows, before the shares),
  // carried from one partition to the next.
  const budgetLeft = new Map(read.budgets.map(([id, left]) => [id, Number(left)] as const));

  const combined = new Map<string, number>();
  for (const share of shares.values()) for (const [key, n] of share) combined.set(key, (combined.get(key) ?? 0) + n);

  // Attempts already decided, or repeated within the round, are answered from the stored row at the
  // end; the others are decided in arrival order whatever their partition (a stable sort keeps each
  // partition's own order).
  const pending: QueuedAttempt[] = [];
  const seen = new Set<string>();
  for (const b of batches) {
    for (const a of b.attempts) {
      const key = attemptKey(a.acquirerId, a.payment.txnId);
      if (stored.has(key) || seen.has(key)) continue;
      seen.add(key);
      pending.push(a);
    }
  }
  pending.sort((x, y) => x.receivedAtMs - y.receivedAtMs);
  return {
    partitions: batches.map((b) => b.partition),
    attempts: new Map(batches.map((b) => [b.partition, b.attempts])),
    pending,
    stored,
    holders: new Set(read.holders.map(([c, a, p]) => holderKey(c, a, p))),
    empty: new Set(read.empty.map(([campaignId, tierId]) => tierKey(campaignId, tierId))),
    shares,
    combined,
    written: new Map([...shares].map(([p, m]) => [p, new Map(m)])),
    budgetLeft,
    budgetBefore: new Map(budgetLeft),
    decided: [],
  };
}

/**
 * Step 2, in memory: the pending attempts in arrival order against the stock the round's
 * partitions hold together, until one needs a refill (returned). Each grant is taken from its own
 * partition's share while that holds any, else from another round partition's.
 */
function decidePending(round: Round, campaigns: ReadonlyMap<string, Campaign>): RefillNeed | undefined {
  const pending = round.pending;
  if (pending.length === 0) return undefined;
  const outcome = decideBatch(
    pending.map((a) => ({ payerId: a.payment.payerId, amountFen: a.payment.amountFen, request: a.request })),
    { share: round.combined, empty: round.empty, holders: round.holders, budgetLeft: round.budgetLeft } satisfies BatchState,
    campaigns,
  );
  outcome.decisions.forEach((decision, i) => {
    const attempt = pending[i]!;
    round.decided.push({ attempt, decision });
    if (decision.status === "granted") takeFromShares(round, attempt.partition, tierKey(decision.campaignId, decision.tierId));
  });
  round.pending = pending.slice(outcome.decisions.length);
  if (!outcome.refill) {
    invariant(round.pending.length === 0, "attempts left over without a refill");
    return undefined;
  }
  const { campaignId, tierId } = outcome.refill;
  return {
    partition: round.pending[0]!.partition,
    campaignId,
    tierId,
    need: round.pending.filter((a) => a.request.campaignId === campaignId && a.request.tierIds.includes(tierId)).length,
  };
}

/** One voucher of a tier out of the round's shares: the attempt's own partition first. */
function takeFromShares(round: Round, partition: number, key: string): void {
  const own = round.shares.get(partition)!;
  let from = (own.get(key) ?? 0) > 0 ? own : undefined;
  for (const p of round.partitions) {
    if (from) break;
    const share = round.shares.get(p)!;
    if ((share.get(key) ?? 0) > 0) from = share;
  }
  invariant(from, `a grant of ${key} that no share of the round holds`);
  from.set(key, from.get(key)! - 1);
}

/** A refill for one partition, the round's unwritten use of that tier applied first; the shares in memory follow it. */
async function refill(client: pg.PoolClient, round: Round, need: RefillNeed, partitionCount: number): Promise<RefillResult> {
  const key = tierKey(need.campaignId, need.tierId);
  const partitions: number[] = [];
  const used: number[] = [];
  for (const p of round.partitions) {
    const inMemory = round.shares.get(p)!.get(key);
    if (inMemory === undefined) continue;
    const delta = round.written.get(p)!.get(key)! - inMemory;
    invariant(delta >= 0, `share of ${key} in partition ${p} grew in memory`);
    if (delta === 0) continue;
    partitions.push(p);
    used.push(delta);
  }
  const move = await refillInTx(client, need.partition, partitionCount, need.campaignId, need.tierId, need.need, { partitions, used }, round.partitions.length);
  for (const p of round.partitions) {
    const inMemory = round.shares.get(p)!.get(key);
    if (inMemory !== undefined) round.written.get(p)!.set(key, inMemory);
  }
  for (const p of move.swept) {
    if (!round.shares.get(p)?.has(key)) continue; // another owner's partition
    invariant(round.shares.get(p)!.get(key) === 0, `swept ${key} of partition ${p}, whose stock the round still held`);
    round.written.get(p)!.set(key, 0);
  }
  if (move.result === "empty") {
    round.empty.add(key);
  } else {
    invariant(round.shares.get(need.partition)!.has(key), `refill of ${key} for partition ${need.partition}, which did not read it`);
    round.shares.get(need.partition)!.set(key, round.shares.get(need.partition)!.get(key)! + move.taken);
    round.written.get(need.partition)!.set(key, round.written.get(need.partition)!.get(key)! + move.taken);
    round.combined.set(key, round.combined.get(key)! + move.taken);
  }
  return move.result;
}

/**
 * Step 3: the round's one write, then every attempt's result. The immediate records of a txn that
 * is also among the round's attempts are answered from that attempt's row (never inserted twice
 * in one statement); those of a payer granted in this round, or holding a voucher the read saw,
 * are stored already_redeemed (the statement's own holder check sees neither).
 */
async function writeRound(
  tx: PipelinedTx,
  round: Round,
  immediate: readonly ImmediateRecord[],
): Promise<{ results: BatchResult[]; immediateRows: DecisionRow[] }> {
  // Built only when the ingress sent decisions with the round (most rounds of the stock phase carry none).
  const inRound = new Set<string>();
  if (immediate.length > 0) {
    for (const attempts of round.attempts.values()) for (const a of attempts) inRound.add(attemptKey(a.acquirerId, a.payment.txnId));
  }
  const shadowed: string[] = [];
  const toInsert: ImmediateRecord[] = [];
  for (const [key, r] of uniqueByTxn(immediate)) {
    if (inRound.has(key)) shadowed.push(key);
    else toInsert.push(heldAlready(r, round.holders));
  }

  const records = round.decided.map(({ attempt, decision }) => recordValues(toRecord(attempt, decision)) as Record<string, unknown>);
  const usedRows: { partition: number; campaignId: string; tierId: string; n: number }[] = [];
  for (const [partition, share] of round.shares) {
    for (const [key, n] of share) {
      const before = round.written.get(partition)!.get(key)!;
      if (before === n) continue;
      invariant(before - n > 0, `share of ${key} grew inside a round`);
      const slash = key.indexOf("/");
      usedRows.push({ partition, campaignId: key.slice(0, slash), tierId: key.slice(slash + 1), n: before - n });
    }
  }
  const spentBy = [...round.budgetLeft].filter(([id, left]) => round.budgetBefore.get(id) !== left);
  for (const [id, left] of spentBy) invariant(left >= 0 && round.budgetBefore.get(id)! - left > 0, `budget of ${id} went wrong inside a round`);

  const immediateRows: DecisionRow[] = [];
  if (records.length > 0 || toInsert.length > 0) {
    // Sent with the COMMIT: nothing below can call the round off (the checks are assertions).
    const written = await tx.commit<DecisionRow & { immediate: boolean }>({
      name: "batch_write",
      text: WRITE,
      values: [
        ...columnArrays(records),
        usedRows.map((u) => u.partition),
        usedRows.map((u) => u.campaignId),
        usedRows.map((u) => u.tierId),
        usedRows.map((u) => u.n),
        spentBy.map(([id]) => id),
        spentBy.map(([id, left]) => round.budgetBefore.get(id)! - left),
        ...immediateInsertValues(toInsert),
      ],
    });
    let decidedRows = 0;
    for (const r of written.rows) {
      if (r.immediate) immediateRows.push(r);
      else {
        decidedRows++;
        round.stored.set(attemptKey(r.acquirer_id, r.txn_id), r);
      }
    }
    invariant(decidedRows === records.length, `wrote ${decidedRows} of ${records.length} decisions`);
  }
  for (const key of shadowed) {
    const row = round.stored.get(key);
    if (row) immediateRows.push(row);
  }

  const fresh = new Set(round.decided.map((d) => d.attempt));
  const results: BatchResult[] = [];
  for (const attempts of round.attempts.values()) {
    for (const attempt of attempts) {
      const row = round.stored.get(attemptKey(attempt.acquirerId, attempt.payment.txnId));
      invariant(row, `attempt ${attemptKey(attempt.acquirerId, attempt.payment.txnId)} left undecided by its round`);
      results.push(answerFromRow(attempt, row, fresh.has(attempt)));
    }
  }
  return { results, immediateRows };
}

/** An immediate record whose payer holds a voucher of the activity in the round's view: already_redeemed. */
function heldAlready(r: ImmediateRecord, holders: ReadonlySet<string>): ImmediateRecord {
  const d = r.record.decision;
  if (!r.checkHolder || d.status !== "rejected" || d.campaignId === undefined || d.activityId === undefined) return r;
  if (!holders.has(holderKey(d.campaignId, d.activityId, r.record.payment.payerId))) return r;
  return { record: { ...r.record, decision: { ...d, reason: "already_redeemed" } }, checkHolder: false };
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
