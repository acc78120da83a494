import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * Fairness in first-come-first-served terms: the largest time by which an
 * attempt refused sold_out arrived before a later-arriving attempt that was
 * granted a voucher of a tier the refused one qualified for. 0 when no
 * refusal was overtaken; null when nothing was refused.
 */
export async function inversionWindowMs(db: Kysely<Database>, campaignId: string): Promise<number | null> {
  // Per tier, the earliest refusal and the latest-arriving grant are all that matter: the window is
  // max over tiers of (last grant's arrival - first refusal's arrival), when positive. A grant of a
  // voucher that a refund returned after the refusal was decided is not an inversion (the refusal
  // was true when made): events are cut into segments by the tier's returns, and a refusal is only
  // compared with grants decided in its segment or an earlier one.
  const rows = await sql<{ ms: number | null; refusals: string }>`
    with refused as materialized (
      select t.id as tier_id, a.received_at, a.decided_at
        from attempts a
        join tiers t on t.campaign_id = a.campaign_id and t.activity_id = a.activity_id and t.threshold_fen <= a.amount_fen
       where a.campaign_id = ${campaignId} and a.reason = 'sold_out'),
    events as (
      select tier_id, voucher_returned_at as at, 0 as ord, 'return' as kind, null::timestamptz as received_at
        from attempts where campaign_id = ${campaignId} and voucher_returned_at is not null
      union all
      select tier_id, decided_at, 1, 'grant', received_at from attempts where campaign_id = ${campaignId} and status = 'granted'
      union all
      select tier_id, decided_at, 1, 'refused', received_at from refused),
    segmented as (
      select kind, tier_id, received_at,
             sum(case when kind = 'return' then 1 else 0 end) over (partition by tier_id order by at, ord rows unbounded preceding) as segment
        from events),
    grants as materialized (
      select tier_id, segment, max(received_at) as last_received from segmented where kind = 'grant' group by 1, 2),
    refusals as materialized (
      select tier_id, segment, min(received_at) as first_refused, count(*) as n from segmented where kind = 'refused' group by 1, 2)
    select (select coalesce(sum(n), 0) from refusals) as refusals,
           coalesce(max(extract(epoch from g.last_received - r.first_refused) * 1000) filter (where g.last_received > r.first_refused), 0) as ms
      from refusals r join grants g on g.tier_id = r.tier_id and g.segment <= r.segment`.execute(db);
  const row = rows.rows[0];
  return !row || Number(row.refusals) === 0 ? null : Number(row.ms);
}
