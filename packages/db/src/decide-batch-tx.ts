import type pg from "pg";
import { Round, attemptHolderKey, holderKey, invariant, tierKey, type Campaign, type Decision, type QueuedAttempt, type RefillNeed } from "@quanta/domain";
import { ATTEMPT_COLUMNS, columnArrays } from "./attempt-columns.js";
import { attemptKey, decisionColumnList, recordValues, type DecisionRow } from "./attempt-repo.js";

export type { RefillNeed };
import { FencedOutError } from "./partition-repo.js";
import { inPipelinedTransaction, type PipelinedTx } from "./transaction.js";
import { refillTake, type RefillResult } from "./refill-tx.js";

/**
 * A worker's round: the attempts of the partitions it owns, decided in one READ COMMITTED
 * transaction and one commit.
 *
 * Inputs: batches of several partitions (each with the fencing epoch its owner holds, attempts
 * in arrival order). Steps:
 *   1. one statement (sent with BEGIN) reads for every batch at once: locks the partition rows
 *      and reads their epochs (a zombie stops here), locks and reads the budget left of capped
 *      campaigns, reads decisions already stored for these txns (replays, and retries after a
 *      commit whose outcome was lost: answered, never re-decided), reads which payers already
 *      hold a voucher, locks the round's share rows and takes KEY SHARE on the tier rows marked
 *      sold out (held to commit: see refund-tx.ts);
 *   2. decides in memory every attempt in arrival order, whatever its partition, against the
 *      stock the round's partitions hold together (the domain's Round, packages/domain/src/round.ts), until one needs a tier
 *      that none of the round's shares holds and that is not marked empty; then takes from that
 *      tier's pool if it can lock the tier row at once (SKIP LOCKED: a round never waits for a
 *      tier row) and goes on deciding;
 *   3. one statement (sent with COMMIT) inserts the decisions made, takes the used stock from the
 *      shares and the discounts from capped budgets.
 * When the tier row is busy (another refill or a refund holds it) or its pool is empty (the
 * other partitions' shares must be swept), the attempts from the one that needs stock on are
 * left undecided (`deferred`, in order) with the refill they wait for: the caller runs refillTx,
 * which may wait and sweep, then a round for them.
 * States of an attempt: stored before (answered from its row) | repeat of one in the round
 * (answered from the first copy's row) | decided (written) | deferred.
 *
 * Lock order, the same for every owner: partition rows by number, capped campaign rows by id,
 * share rows by (partition, campaign, tier), then KEY SHARE on marked tier rows; after its read a
 * round waits for no row lock (a tier row only with SKIP LOCKED; its insert can wait only for
 * another transaction inserting the same txn, and the ingress's statement takes its tier locks
 * before it inserts) and never touches another owner's shares. Refills that may wait or sweep (refill-tx.ts) run in transactions of their own
 * that hold nothing else. So a sweep that waits for another owner's shares waits for a round that
 * cannot be waiting for the sweep: no cycle across owners, which waiting refills inside rounds had
 * (owner A's refill held the tier row and waited for B's shares while B's round held them and
 * waited for the tier row).
 * Trade-off: a round that finds a tier row busy or its pool empty commits what it decided, and
 * the rest waits for one refill and one more round; in exchange no round ever waits on a lock
 * another owner holds while that owner waits on it.
 */
export type BatchResult =
  | { kind: "decided"; attempt: QueuedAttempt; row: DecisionRow; fresh: boolean }
  | { kind: "conflict"; attempt: QueuedAttempt; row: DecisionRow };

/**
 * All reads of a round in one round trip. The scalar subqueries run left to right, which is the
 * lock order above. Stored decisions and holders are looked up one key at a time (lateral, with
 * `limit 1` on holders), so the plan stays a chain of index lookups however stale the statistics
 * are: during a rush autovacuum analyses `attempts` minutes behind the grants, and an `= any()`
 * form was planned as a scan of every grant. Exported for its plan test (batch-read-plan.test.ts).
 */
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

/**
 * The round's one write: its decisions, the used stock taken from the shares and the discounts
 * from capped budgets. The decrements are deltas, so the CHECKs (remaining >= 0,
 * budget_left_fen >= 0) backstop any arithmetic slip.
 */
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
    returning 1)
  insert into attempts (${COLUMNS.map(([c]) => c).join(", ")})
  select * from unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(", ")})
  returning ${decisionColumnList()}`;

export interface PartitionBatch {
  partition: number;
  epoch: number;
  attempts: readonly QueuedAttempt[];
}

export interface RoundOutcome {
  /** A result for every attempt not deferred, batch after batch, in each batch's order. */
  results: BatchResult[];
  /** Attempts left undecided, in arrival order, waiting for `refill`. */
  deferred: QueuedAttempt[];
  refill?: RefillNeed;
  /** What the round's own refills did ("pool": taken from the pool; "empty": the tier was marked empty). */
  refills: RefillResult[];
}

/** For tests that must hold a round open between its read and its write (lock-order tests). */
export interface RoundProbe {
  afterRead?: () => Promise<void>;
}

/** Refills one round makes itself: a tier is refilled only until it is marked empty, so this only catches a bug. */
const ROUND_REFILLS_MAX = 1_000;

/** One round: reads, decides in memory, writes; stops at the first attempt whose refill it cannot make itself. */
export async function decideGroupTx(
  pool: pg.Pool,
  batches: readonly PartitionBatch[],
  campaigns: ReadonlyMap<string, Campaign>,
  partitionCount: number,
  probe: RoundProbe = {},
): Promise<RoundOutcome> {
  const live = [...batches].filter((b) => b.attempts.length > 0).sort((a, b) => a.partition - b.partition);
  for (let i = 1; i < live.length; i++) invariant(live[i]!.partition !== live[i - 1]!.partition, "two batches of one partition in a round");
  if (live.length === 0) return { results: [], deferred: [], refills: [] };
  return inPipelinedTransaction(pool, async (tx) => {
    const { round, stored } = await readRound(tx, live, campaigns);
    await probe.afterRead?.();
    const refills: RefillResult[] = [];
    let refill = round.decide(campaigns);
    while (refill) {
      invariant(refills.length < ROUND_REFILLS_MAX, "refills inside a round did not converge");
      const done = await takeFromPool(tx.client, round, refill, partitionCount);
      if (done === "deferred") break;
      refills.push(done);
      refill = round.decide(campaigns);
    }
    await writeRound(tx, round, stored);
    return { ...results(live, round, stored), refills, ...(refill ? { refill } : {}) };
  });
}

/**
 * A refill inside the round, only from the pool and only if the tier row can be locked at once:
 * "pool" (stock moved to the asking partition's share, here and in memory), "empty" (the tier is
 * marked: its attempts are refused sold_out, the row now locked against a refund until commit, as
 * KEY SHARE would), or "deferred" (row busy, or pool empty: refillTx after the round).
 */
async function takeFromPool(client: pg.PoolClient, round: Round, need: RefillNeed, partitionCount: number): Promise<RefillResult | "deferred"> {
  const tier = (
    await client.query<{ pool: number; chunk: number; sold_out: boolean }>({
      name: "round_refill_tier",
      text: "select pool, chunk, sold_out_at is not null as sold_out from tiers where campaign_id = $1 and id = $2 for update skip locked",
      values: [need.campaignId, need.tierId],
    })
  ).rows[0];
  const key = tierKey(need.campaignId, need.tierId);
  if (!tier) return "deferred";
  if (tier.sold_out) {
    round.markEmpty(key);
    return "empty";
  }
  if (tier.pool === 0) return "deferred";
  const take = refillTake(tier.pool, tier.chunk, need, partitionCount);
  await client.query({
    name: "round_refill_take",
    text: `with t as (update tiers set pool = pool - $3 where campaign_id = $1 and id = $2 returning 1)
           update tier_shares set remaining = remaining + $3 where campaign_id = $1 and tier_id = $2 and partition = $4`,
    values: [need.campaignId, need.tierId, take, need.partition],
  });
  round.addStock(need.partition, key, take);
  return "pool";
}

/** Step 1: the round's one read (fencing, budgets, stored decisions, holders, shares, marks). */
async function readRound(
  tx: PipelinedTx,
  batches: readonly PartitionBatch[],
  campaigns: ReadonlyMap<string, Campaign>,
): Promise<{ round: Round; stored: Map<string, DecisionRow> }> {
  const tiers = new Map<string, { campaignId: string; tierId: string }>();
  const holderByKey = new Map<string, { payerId: string; campaignId: string; activityId: string }>();
  const all: QueuedAttempt[] = [];
  for (const b of batches) {
    for (const a of b.attempts) {
      invariant(a.partition === b.partition, `attempt queued to partition ${a.partition} reached ${b.partition}`);
      invariant(campaigns.has(a.request.campaignId), `attempt names unknown campaign ${a.request.campaignId}`);
      all.push(a);
      for (const t of a.request.tierIds) tiers.set(tierKey(a.request.campaignId, t), { campaignId: a.request.campaignId, tierId: t });
      const key = attemptHolderKey(a);
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
  const round = new Round(batches, {
    storedKeys: new Set(stored.keys()),
    holders: new Set(read.holders.map(([c, a, p]) => holderKey(c, a, p))),
    empty: new Set(read.empty.map(([campaignId, tierId]) => tierKey(campaignId, tierId))),
    shares,
    budgetLeft: new Map(read.budgets.map(([id, left]) => [id, Number(left)] as const)),
  });
  return { round, stored };
}

/** Step 3: the round's one write, sent with the COMMIT (a round that decided nothing just commits). */
async function writeRound(tx: PipelinedTx, round: Round, stored: Map<string, DecisionRow>): Promise<void> {
  if (round.decided.length === 0) return;
  const records = round.decided.map(({ attempt, decision }) => recordValues(toRecord(attempt, decision)) as Record<string, unknown>);
  const usedRows = round.usedStock();
  const spentBy = round.budgetSpent();
  const written = await tx.commit<DecisionRow>({
    name: "batch_write",
    text: WRITE,
    values: [
      ...columnArrays(records),
      usedRows.map((u) => u.partition),
      usedRows.map((u) => u.campaignId),
      usedRows.map((u) => u.tierId),
      usedRows.map((u) => u.n),
      spentBy.map(([id]) => id),
      spentBy.map(([, fen]) => fen),
    ],
  });
  invariant(written.rows.length === records.length, `wrote ${written.rows.length} of ${records.length} decisions`);
  for (const r of written.rows) stored.set(attemptKey(r.acquirer_id, r.txn_id), r);
}

/** Every attempt's result, batch after batch; the deferred ones (repeats of them too) in arrival order. */
function results(batches: readonly PartitionBatch[], round: Round, stored: ReadonlyMap<string, DecisionRow>): { results: BatchResult[]; deferred: QueuedAttempt[] } {
  const deferredKeys = new Set(round.pending.map((a) => attemptKey(a.acquirerId, a.payment.txnId)));
  const fresh = new Set(round.decided.map((d) => d.attempt));
  const out: BatchResult[] = [];
  const deferred: QueuedAttempt[] = [];
  for (const { attempts } of batches) {
    for (const attempt of attempts) {
      const key = attemptKey(attempt.acquirerId, attempt.payment.txnId);
      if (deferredKeys.has(key)) {
        deferred.push(attempt);
        continue;
      }
      const row = stored.get(key);
      invariant(row, `attempt ${key} left undecided by its round`);
      out.push(row.body_hash === attempt.bodyHash ? { kind: "decided", attempt, row, fresh: fresh.has(attempt) } : { kind: "conflict", attempt, row });
    }
  }
  deferred.sort((x, y) => x.receivedAtMs - y.receivedAtMs);
  return { results: out, deferred };
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
