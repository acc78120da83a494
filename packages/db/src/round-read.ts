import {
  Round,
  attemptHolderKey,
  holderKey,
  invariant,
  tierKey,
  type Campaign,
  type QueuedAttempt,
} from "@quanta/domain";
import { attemptKey, decisionColumnList, type DecisionRow } from "./attempt-repo.js";
import { FencedOutError } from "./partition-repo.js";
import type { PipelinedTx } from "./transaction.js";

/**
 * Step 1 of a round (decide-batch-tx.ts): its one read, sent with BEGIN.
 *
 * Inputs: the round's batches (a partition, the epoch its owner holds, the attempts queued to it)
 * and the campaigns the attempts name. The read locks, in the lock order, the round's partition
 * rows, its capped campaigns' rows and its shares (every partition of the round times every tier
 * its attempts name), and reads the decisions already stored for its attempts, the payers who
 * already hold a voucher and the tiers marked sold out (KEY SHARE on their rows). Parameters of
 * BATCH_READ_SQL: $1-$3 the (partition, campaign, tier) of every share; $4 the round's
 * partitions; $5-$6 the (acquirer, txn) of every attempt; $7-$9 the (payer, campaign, activity)
 * of every payer.
 * States: fenced out (a partition's epoch moved on: FencedOutError, nothing is decided) | read
 * (the domain's Round to decide on, and the stored decisions by attempt key).
 * Trade-off: every read in one statement, so reading costs the round one round trip (with BEGIN,
 * docs/decisions/0009), at the price of parameters passed as parallel arrays and answers that
 * come back as JSON to unpack here.
 */
export interface PartitionBatch {
  partition: number;
  epoch: number;
  attempts: readonly QueuedAttempt[];
}

/**
 * All reads of a round in one round trip. The scalar subqueries run left to right, which is the
 * lock order (see decide-batch-tx.ts). Stored decisions and holders are looked up one key at a
 * time (lateral, with `limit 1` on holders), so the plan stays a chain of index lookups however
 * stale the statistics are (docs/decisions/0007). Exported for its plan test
 * (batch-read-plan.test.ts).
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

/** Step 1: the round's one read (fencing, budgets, stored decisions, holders, shares, marks). */
export async function readRound(
  tx: PipelinedTx,
  batches: readonly PartitionBatch[],
  campaigns: ReadonlyMap<string, Campaign>,
): Promise<{ round: Round; stored: Map<string, DecisionRow> }> {
  const read = await sendBatchRead(tx, batches, roundKeys(batches, campaigns));
  throwIfFencedOut(batches, read.epochs);
  const stored = new Map(read.stored.map((row) => [attemptKey(row.acquirer_id, row.txn_id), row] as const));
  const round = new Round(batches, {
    storedKeys: new Set(stored.keys()),
    holders: new Set(read.holders.map(([c, a, p]) => holderKey(c, a, p))),
    empty: new Set(read.empty.map(([campaignId, tierId]) => tierKey(campaignId, tierId))),
    shares: sharesByPartition(batches, read.shares),
    budgetLeft: new Map(read.budgets.map(([id, left]) => [id, Number(left)] as const)),
  });
  return { round, stored };
}

/** What the round's attempts name: the attempts, their tiers and their payers, each once. */
interface RoundKeys {
  attempts: QueuedAttempt[];
  tiers: { campaignId: string; tierId: string }[];
  holders: { payerId: string; campaignId: string; activityId: string }[];
}

/** One row: each column is JSON that Postgres built (see BATCH_READ_SQL). */
interface BatchRead {
  epochs: [number, number][];
  budgets: [string, number][];
  stored: DecisionRow[];
  holders: [string, string, string][];
  shares: { partition: number; campaign_id: string; tier_id: string; remaining: number }[];
  empty: [string, string][];
}

/** The round's keys; an attempt in the wrong partition or naming an unknown campaign is a bug upstream. */
function roundKeys(batches: readonly PartitionBatch[], campaigns: ReadonlyMap<string, Campaign>): RoundKeys {
  const tiers = new Map<string, { campaignId: string; tierId: string }>();
  const holders = new Map<string, { payerId: string; campaignId: string; activityId: string }>();
  const attempts: QueuedAttempt[] = [];
  for (const b of batches) {
    for (const a of b.attempts) {
      invariant(a.partition === b.partition, `attempt queued to partition ${a.partition} reached ${b.partition}`);
      invariant(campaigns.has(a.request.campaignId), `attempt names unknown campaign ${a.request.campaignId}`);
      attempts.push(a);
      for (const t of a.request.tierIds)
        tiers.set(tierKey(a.request.campaignId, t), { campaignId: a.request.campaignId, tierId: t });
      const key = attemptHolderKey(a);
      if (!holders.has(key))
        holders.set(key, {
          payerId: a.payment.payerId,
          campaignId: a.request.campaignId,
          activityId: a.request.activityId,
        });
    }
  }
  return { attempts, tiers: [...tiers.values()], holders: [...holders.values()] };
}

async function sendBatchRead(tx: PipelinedTx, batches: readonly PartitionBatch[], keys: RoundKeys): Promise<BatchRead> {
  // Every partition of the round, every tier its attempts name: the stock the round holds together.
  const shareList = batches.flatMap((b) => keys.tiers.map((t) => ({ partition: b.partition, ...t })));
  const read = await tx.begin<BatchRead>({
    name: "batch_read",
    text: BATCH_READ_SQL,
    values: [
      shareList.map((k) => k.partition),
      shareList.map((k) => k.campaignId),
      shareList.map((k) => k.tierId),
      batches.map((b) => b.partition),
      keys.attempts.map((a) => a.acquirerId),
      keys.attempts.map((a) => a.payment.txnId),
      keys.holders.map((h) => h.payerId),
      keys.holders.map((h) => h.campaignId),
      keys.holders.map((h) => h.activityId),
    ],
  });
  return read.rows[0]!;
}

/** A batch whose partition moved on to another epoch belongs to a newer owner: this one decides nothing. */
function throwIfFencedOut(batches: readonly PartitionBatch[], rows: BatchRead["epochs"]): void {
  const epochs = new Map(rows.map(([p, e]) => [Number(p), Number(e)] as const));
  for (const b of batches) {
    if (epochs.get(b.partition) !== b.epoch) {
      throw new FencedOutError(
        `partition ${b.partition} moved on to epoch ${epochs.get(b.partition)}; this owner holds ${b.epoch}`,
        b.partition,
      );
    }
  }
}

/** Remaining stock per partition and tier; every partition of the round has a map, empty if it holds no share. */
function sharesByPartition(
  batches: readonly PartitionBatch[],
  rows: BatchRead["shares"],
): Map<number, Map<string, number>> {
  const shares = new Map<number, Map<string, number>>(batches.map((b) => [b.partition, new Map()]));
  for (const r of rows) shares.get(Number(r.partition))!.set(tierKey(r.campaign_id, r.tier_id), r.remaining);
  return shares;
}
