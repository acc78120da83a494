import type pg from "pg";
import { invariant } from "@quanta/domain";

/**
 * Refills one partition's share of one tier.
 *
 * States of a tier: pool > 0 (take a chunk from the pool), pool = 0 with
 * stock left in other partitions' shares (sweep it all back into the pool,
 * then take a chunk), everything empty (mark sold_out_at: from then on every
 * partition answers sold_out without asking).
 *
 * How much to take: a chunk (about quota / (8 x partitions)) per partition
 * the asking owner decides while the pool is large, so refills are rare;
 * once the pool holds less than a chunk per partition (the tail), what the
 * waiting attempts need or 1/P of what is left per partition asking,
 * whichever is more, so the last vouchers are not parked with one owner
 * while another sweeps for them, and the tail costs about P x log(chunk x P)
 * refills rather than one per grant.
 *
 * Lock order: the tier row (the pool), then share rows by partition number.
 * At most one refill of a tier runs at a time (the pool row serializes them).
 * A partition owner runs it inside its group transaction (refillInTx), which
 * already holds its own partitions' share rows: the refill and the decisions
 * it unblocks commit together, and one owner of every partition never waits
 * on itself; owners of disjoint partitions can deadlock on a sweep (each
 * holding its shares, each wanting the other's), which Postgres breaks and
 * the round retries.
 * A group transaction decides in memory and writes its decisions once, at
 * the end: it passes the share use it has not written yet (UnwrittenUse),
 * which the refill's first statement applies, so that a sweep reads every
 * share as it really is.
 * Trade-off: a sweep touches every partition's row (waiting for their batch
 * transactions), but guarantees that sold_out is only ever said of a tier
 * that is empty everywhere (I6).
 */
export type RefillResult = "pool" | "swept" | "empty";

/** What a refill moved, for a caller that keeps the shares it holds in memory. */
export interface RefillMove {
  result: RefillResult;
  /** Vouchers put into the asking partition's share (0 when the tier is empty). */
  taken: number;
  /** Partitions whose shares of the tier a sweep emptied into the pool (the asker's among them when it held any). */
  swept: number[];
}

/**
 * Share use the caller decided and has not written yet, for this tier: applied in the refill's
 * first statement, so that a sweep reads every share as it really is.
 */
export interface UnwrittenUse {
  partitions: readonly number[];
  used: readonly number[];
}

/** A refill inside the caller's transaction (a partition owner's group transaction). */
export async function refillInTx(
  client: pg.PoolClient,
  partition: number,
  partitionCount: number,
  campaignId: string,
  tierId: string,
  need: number,
  unwritten?: UnwrittenUse,
  /** Partitions the asking owner decides together (their shares pooled): it takes their parts at once. */
  partitionsAsking = 1,
): Promise<RefillMove> {
  invariant(partitionsAsking >= 1 && partitionsAsking <= partitionCount, `refill for ${partitionsAsking} of ${partitionCount} partitions`);
  const tier = (
    unwritten && unwritten.partitions.length > 0
      ? await client.query<{ pool: number; chunk: number; sold_out: boolean }>({
          name: "refill_tier_after_use",
          text: `with used as (
                   update tier_shares s set remaining = s.remaining - u.used
                     from unnest($3::int[], $4::int[]) as u(partition, used)
                    where s.campaign_id = $1 and s.tier_id = $2 and s.partition = u.partition
                   returning 1)
                 select pool, chunk, sold_out_at is not null as sold_out, (select count(*) from used) as used
                   from tiers where campaign_id = $1 and id = $2 for update`,
          values: [campaignId, tierId, unwritten.partitions, unwritten.used],
        })
      : await client.query<{ pool: number; chunk: number; sold_out: boolean }>({
          name: "refill_tier",
          text: "select pool, chunk, sold_out_at is not null as sold_out from tiers where campaign_id = $1 and id = $2 for update",
          values: [campaignId, tierId],
        })
  ).rows[0];
  if (!tier) throw new Error(`refill of unknown tier ${campaignId}/${tierId}`);
  if (tier.sold_out) return { result: "empty", taken: 0, swept: [] };

  let pool = tier.pool;
  let result: RefillResult = "pool";
  let swept: number[] = [];
  if (pool === 0) {
    const holders = (
      await client.query<{ partition: number; remaining: number }>({
        name: "refill_holders",
        text: `select partition, remaining from tier_shares
                where campaign_id = $1 and tier_id = $2 and remaining > 0
                order by partition for update`,
        values: [campaignId, tierId],
      })
    ).rows;
    pool = holders.reduce((sum, h) => sum + h.remaining, 0);
    if (pool === 0) {
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
  const tail = pool < tier.chunk * partitionCount;
  // In the tail, a fair part of what is left: refills stay logarithmic in the stock left
  // (one per grant made the tail a storm of sweeps), and no partition can sit on more than
  // 1/P of it while another one asks. An owner deciding k partitions together takes k parts.
  const fair = tail ? Math.ceil((pool * partitionsAsking) / partitionCount) : tier.chunk * partitionsAsking;
  const take = Math.min(pool, Math.max(need, fair));
  await client.query({
    name: "refill_take",
    text: `with t as (update tiers set pool = $3 where campaign_id = $1 and id = $2 returning 1)
           update tier_shares set remaining = remaining + $4 where campaign_id = $1 and tier_id = $2 and partition = $5`,
    values: [campaignId, tierId, pool - take, take, partition],
  });
  return { result, taken: take, swept };
}
