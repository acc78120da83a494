import type pg from "pg";
import { invariant } from "@quanta/domain";
import type { RefillNeed } from "./decide-batch-tx.js";
import { inTransaction } from "./transaction.js";

/**
 * Refills one partition's share of one tier, in a transaction of its own (a round takes from a
 * pool it can lock at once itself, decide-batch-tx.ts; it comes here when the tier row is busy or
 * the pool is empty).
 *
 * States of a tier: pool > 0 (take from the pool), pool = 0 with stock left in partitions'
 * shares (sweep it all back into the pool, then take), everything empty (mark sold_out_at: from
 * then on every partition, and the ingress, answers sold_out without asking).
 *
 * How much to take: a chunk (about quota / (8 x partitions)) per partition the asking round
 * decides together while the pool is large, so refills are rare; once the pool holds less than a
 * chunk per partition (the tail), what the waiting attempts need or a fair part of what is left
 * per asking partition, whichever is more, so the last vouchers are not parked with one owner
 * while another sweeps for them, and the tail costs about P x log(chunk x P) refills rather than
 * one per grant.
 *
 * Lock order: the tier row (FOR UPDATE: at most one refill of a tier at a time, and refunds
 * wait), then share rows by partition number. It runs outside any round and holds nothing else,
 * so when a sweep waits for another owner's shares, it waits for a round that never waits for a
 * tier row (decide-batch-tx.ts): no deadlock cycle, however many owners sweep at once
 * (docs/decisions/0005).
 * Trade-off: a sweep waits for every partition's round in progress (a few milliseconds), but
 * sold_out is only ever said of a tier that is empty everywhere (I6).
 */
export type RefillResult = "pool" | "swept" | "empty";

/** What a refill moved. */
export interface RefillMove {
  result: RefillResult;
  /** Vouchers put into the asking partition's share (0 when the tier is empty). */
  taken: number;
  /** Partitions whose shares a sweep emptied into the pool. */
  swept: number[];
}

/**
 * How much of the stock left (the pool, or what a sweep brought back) one refill takes: a chunk
 * per asking partition while there is plenty; in the tail (less than a chunk per partition), what
 * the waiting attempts need or a fair part per asking partition, whichever is more.
 */
export function refillTake(
  stock: number,
  chunk: number,
  need: Pick<RefillNeed, "need" | "partitionsAsking">,
  partitionCount: number,
): number {
  const tail = stock < chunk * partitionCount;
  const fair = tail ? Math.ceil((stock * need.partitionsAsking) / partitionCount) : chunk * need.partitionsAsking;
  return Math.min(stock, Math.max(need.need, fair));
}

export async function refillTx(pool: pg.Pool, need: RefillNeed, partitionCount: number): Promise<RefillMove> {
  return inTransaction(pool, (client) => refillInTx(client, need, partitionCount));
}

/** The refill's statements, on a client whose transaction holds nothing else (see the header). */
export async function refillInTx(client: pg.PoolClient, need: RefillNeed, partitionCount: number): Promise<RefillMove> {
  const { partition, campaignId, tierId, partitionsAsking } = need;
  invariant(
    partitionsAsking >= 1 && partitionsAsking <= partitionCount,
    `refill for ${partitionsAsking} of ${partitionCount} partitions`,
  );
  const tier = (
    await client.query<{ pool: number; chunk: number; sold_out: boolean }>({
      name: "refill_tier",
      text: "select pool, chunk, sold_out_at is not null as sold_out from tiers where campaign_id = $1 and id = $2 for update",
      values: [campaignId, tierId],
    })
  ).rows[0];
  if (!tier) throw new Error(`refill of unknown tier ${campaignId}/${tierId}`);
  if (tier.sold_out) return { result: "empty", taken: 0, swept: [] };

  let stock = tier.pool;
  let result: RefillResult = "pool";
  let swept: number[] = [];
  if (stock === 0) {
    // The asking partition's share is locked here too, in partition order, even when empty: the
    // take below must not lock a share out of order (a new owner's round holding it, and waiting
    // for a share this sweep holds, would be a cycle).
    const holders = (
      await client.query<{ partition: number; remaining: number }>({
        name: "refill_holders",
        text: `select partition, remaining from tier_shares
                where campaign_id = $1 and tier_id = $2 and (remaining > 0 or partition = $3)
                order by partition for update`,
        values: [campaignId, tierId, partition],
      })
    ).rows.filter((h) => h.remaining > 0);
    stock = holders.reduce((sum, h) => sum + h.remaining, 0);
    if (stock === 0) {
      await client.query({
        name: "refill_mark",
        text: "update tiers set sold_out_at = clock_timestamp() where campaign_id = $1 and id = $2",
        values: [campaignId, tierId],
      });
      return { result: "empty", taken: 0, swept: [] };
    }
    swept = holders.map((h) => h.partition);
    await client.query({
      name: "refill_sweep",
      text: "update tier_shares set remaining = 0 where campaign_id = $1 and tier_id = $2 and partition = any($3::int[])",
      values: [campaignId, tierId, swept],
    });
    result = "swept";
  }
  const take = refillTake(stock, tier.chunk, need, partitionCount);
  await client.query({
    name: "refill_take",
    text: `with t as (update tiers set pool = $3 where campaign_id = $1 and id = $2 returning 1)
           update tier_shares set remaining = remaining + $4 where campaign_id = $1 and tier_id = $2 and partition = $5`,
    values: [campaignId, tierId, stock - take, take, partition],
  });
  return { result, taken: take, swept };
}
