import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * Each tier's stock as the decision records have it: what was granted, what refunds returned,
 * what is held and what is left (pool plus shares). I1 checks it (verify.ts); the admin status
 * and the rush report show it. One read per call, for one campaign or for all of them.
 */
export interface TierReport {
  campaignId: string;
  tierId: string;
  activityId: string;
  quota: number;
  /** Vouchers ever granted. */
  granted: number;
  /** ... of which a refund returned to the stock. */
  returned: number;
  /** granted - returned: vouchers out with payers. */
  held: number;
  remaining: number;
  discountFen: number;
  soldOutAt: Date | null;
  lastGrantAt: Date | null;
}

export async function tierReport(db: Kysely<Database>, campaignId?: string): Promise<TierReport[]> {
  const rows = await sql<{
    campaign_id: string;
    id: string;
    activity_id: string;
    quota: number;
    pool: number;
    discount_fen: number;
    sold_out_at: Date | null;
    shares: string;
    granted: string;
    returned: string;
    last_grant_at: Date | null;
  }>`
    select t.campaign_id, t.id, t.activity_id, t.quota, t.pool, t.discount_fen, t.sold_out_at,
           (select coalesce(sum(remaining), 0) from tier_shares s where s.campaign_id = t.campaign_id and s.tier_id = t.id) as shares,
           g.granted, g.returned, g.last_grant_at
      from tiers t
      left join lateral (select count(*) as granted, count(voucher_returned_at) as returned, max(decided_at) as last_grant_at from attempts a
                          where a.status = 'granted' and a.campaign_id = t.campaign_id and a.tier_id = t.id) g on true
     where ${campaignId ?? null}::text is null or t.campaign_id = ${campaignId ?? null}
     order by t.campaign_id, t.activity_id, t.threshold_fen`.execute(db);
  return rows.rows.map((r) => ({
    campaignId: r.campaign_id,
    tierId: r.id,
    activityId: r.activity_id,
    quota: r.quota,
    granted: Number(r.granted),
    returned: Number(r.returned),
    held: Number(r.granted) - Number(r.returned),
    remaining: r.pool + Number(r.shares),
    discountFen: r.discount_fen,
    soldOutAt: r.sold_out_at,
    lastGrantAt: r.last_grant_at,
  }));
}
