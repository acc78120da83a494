import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";
import type { InvariantCheck } from "./verify.js";

/**
 * I6: no sold_out refusal while stock remained. Read in time, not now, because refunds return
 * vouchers after the refusals: per tier, a running count of vouchers out with payers (+1 at each
 * grant, -1 at each return), checked at each sold_out refusal, must equal the quota.
 */
export async function checkNoStrandedStock(db: Kysely<Database>, campaignId: string): Promise<InvariantCheck> {
  const stranded = await strandedRefusals(db, campaignId);
  const refusals = await soldOutRefusals(db, campaignId);
  return {
    id: "I6",
    ok: stranded.count === 0,
    detail:
      stranded.count === 0
        ? `${refusals} sold_out refusals, each on tiers empty everywhere when it was decided`
        : `${stranded.count} sold_out refusals while stock remained, e.g. ${stranded.sample}`,
  };
}

/**
 * The refusals decided while a tier they qualified for held less than its quota, and one of them
 * as `txn (tier)`. The tiers a refusal qualified for: all it reaches under best_available, its
 * highest otherwise. Ties in time: grants and returns count before the refusal.
 */
async function strandedRefusals(
  db: Kysely<Database>,
  campaignId: string,
): Promise<{ count: number; sample: string | null | undefined }> {
  const stranded = await sql<{ n: string; sample: string | null }>`
    with tiers_c as materialized (
      select id, activity_id, threshold_fen, quota from tiers where campaign_id = ${campaignId}),
    checks as materialized (
      select q.txn_id, q.tier_id, q.decided_at
        from (select r.txn_id, r.decided_at, t.id as tier_id,
                     rank() over (partition by r.txn_id order by t.threshold_fen desc) as rk
                from attempts r join tiers_c t on t.activity_id = r.activity_id and t.threshold_fen <= r.amount_fen
               where r.campaign_id = ${campaignId} and r.reason = 'sold_out') q, campaigns c
       where c.id = ${campaignId} and (c.tier_policy = 'best_available' or q.rk = 1)),
    events as (
      select tier_id, decided_at as at, 1 as delta, 0 as ord, null::text as txn_id
        from attempts where campaign_id = ${campaignId} and status = 'granted'
      union all
      select tier_id, voucher_returned_at, -1, 0, null
        from attempts where campaign_id = ${campaignId} and status = 'granted' and voucher_returned_at is not null
      union all
      select tier_id, decided_at, 0, 1, txn_id from checks),
    running as (
      select e.tier_id, e.ord, e.txn_id, sum(e.delta) over (partition by e.tier_id order by e.at, e.ord rows unbounded preceding) as held
        from events e)
    select count(*) as n, min(r.txn_id || ' (' || r.tier_id || ')') as sample
      from running r join tiers_c t on t.id = r.tier_id
     where r.ord = 1 and r.held <> t.quota`.execute(db);
  return { count: Number(stranded.rows[0]?.n ?? 0), sample: stranded.rows[0]?.sample };
}

async function soldOutRefusals(db: Kysely<Database>, campaignId: string): Promise<number> {
  const refusals = await sql<{
    n: string;
  }>`select count(*) as n from attempts where campaign_id = ${campaignId} and reason = 'sold_out'`.execute(db);
  return Number(refusals.rows[0]?.n ?? 0);
}
