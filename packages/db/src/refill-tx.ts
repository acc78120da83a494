import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * Refills one partition's share of one tier.
 *
 * States of a tier: pool > 0 (take a chunk from the pool), pool = 0 with
 * stock left in other partitions' shares (sweep it all back into the pool,
 * then take a chunk), everything empty (mark sold_out_at: from then on every
 * partition answers sold_out without asking).
 *
 * How much to take: a chunk (about quota / (8 x partitions)) while the pool
 * is large, so refills are rare; once the pool holds less than a chunk per
 * partition (the tail), what the waiting attempts need or 1/P of what is
 * left, whichever is more, so the last vouchers are not parked in one
 * partition while another sweeps for them, and the tail costs about
 * P x log(chunk x P) refills rather than one per grant.
 *
 * Lock order: the tier row (the pool), then share rows by partition number.
 * At most one refill of a tier runs at a time (the pool row serializes them).
 * Trade-off: a sweep touches every partition's row (waiting for their batch
 * transactions), but guarantees that sold_out is only ever said of a tier
 * that is empty everywhere (I6).
 */
export type RefillResult = "pool" | "swept" | "empty";

export async function refillShareTx(
  db: Kysely<Database>,
  partition: number,
  partitionCount: number,
  campaignId: string,
  tierId: string,
  need: number,
): Promise<RefillResult> {
  return db.transaction().execute(async (trx) => {
    const tier = (
      await sql<{ pool: number; chunk: number; sold_out: boolean }>`
        select pool, chunk, sold_out_at is not null as sold_out from tiers
         where campaign_id = ${campaignId} and id = ${tierId} for update`.execute(trx)
    ).rows[0];
    if (!tier) throw new Error(`refill of unknown tier ${campaignId}/${tierId}`);
    if (tier.sold_out) return "empty";

    let pool = tier.pool;
    let result: RefillResult = "pool";
    if (pool === 0) {
      const holders = (
        await sql<{ partition: number; remaining: number }>`
          select partition, remaining from tier_shares
           where campaign_id = ${campaignId} and tier_id = ${tierId} and remaining > 0
           order by partition for update`.execute(trx)
      ).rows;
      pool = holders.reduce((sum, h) => sum + h.remaining, 0);
      if (pool === 0) {
        await sql`update tiers set sold_out_at = clock_timestamp() where campaign_id = ${campaignId} and id = ${tierId}`.execute(trx);
        return "empty";
      }
      await sql`update tier_shares set remaining = 0
                 where campaign_id = ${campaignId} and tier_id = ${tierId}
                   and partition = any(${holders.map((h) => h.partition)}::int[])`.execute(trx);
      result = "swept";
    }
    const tail = pool < tier.chunk * partitionCount;
    // In the tail, a fair part of what is left: refills stay logarithmic in the stock left
    // (one per grant made the tail a storm of sweeps), and no partition can sit on more than
    // 1/P of it while another one asks.
    const take = Math.min(pool, tail ? Math.max(need, Math.ceil(pool / partitionCount)) : Math.max(need, tier.chunk));
    await sql`update tiers set pool = ${pool - take} where campaign_id = ${campaignId} and id = ${tierId}`.execute(trx);
    await sql`update tier_shares set remaining = remaining + ${take}
               where campaign_id = ${campaignId} and tier_id = ${tierId} and partition = ${partition}`.execute(trx);
    return result;
  });
}
