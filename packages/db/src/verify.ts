import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * The invariants that the database alone can prove for a campaign.
 *   I1 per tier: granted <= quota and granted + pool + sum(shares) = quota.
 *   I2 at most one grant per (activity, payer).
 *   I4 one decision per (acquirer, txn) - the primary key; checked anyway.
 *   I6 every sold_out refusal: each tier it qualified for is empty now and
 *      granted nothing after it (stock only goes down, so it was empty then).
 * I3 and I5 need the caller's view (what was acknowledged, what was forged):
 * see checkAcknowledged below and the rush report.
 */
export interface TierReport {
  campaignId: string;
  tierId: string;
  activityId: string;
  quota: number;
  granted: number;
  remaining: number;
  discountFen: number;
  soldOutAt: Date | null;
  lastGrantAt: Date | null;
}

export interface InvariantCheck {
  id: "I1" | "I2" | "I3" | "I4" | "I5" | "I6" | "budget";
  ok: boolean;
  detail: string;
}

export async function tierReport(db: Kysely<Database>, campaignId?: string): Promise<TierReport[]> {
  const rows = await sql<{
    campaign_id: string; id: string; activity_id: string; quota: number; pool: number; discount_fen: number;
    sold_out_at: Date | null; shares: string; granted: string; last_grant_at: Date | null;
  }>`
    select t.campaign_id, t.id, t.activity_id, t.quota, t.pool, t.discount_fen, t.sold_out_at,
           (select coalesce(sum(remaining), 0) from tier_shares s where s.campaign_id = t.campaign_id and s.tier_id = t.id) as shares,
           g.granted, g.last_grant_at
      from tiers t
      left join lateral (select count(*) as granted, max(decided_at) as last_grant_at from attempts a
                          where a.status = 'granted' and a.campaign_id = t.campaign_id and a.tier_id = t.id) g on true
     where ${campaignId ?? null}::text is null or t.campaign_id = ${campaignId ?? null}
     order by t.campaign_id, t.activity_id, t.threshold_fen`.execute(db);
  return rows.rows.map((r) => ({
    campaignId: r.campaign_id,
    tierId: r.id,
    activityId: r.activity_id,
    quota: r.quota,
    granted: Number(r.granted),
    remaining: r.pool + Number(r.shares),
    discountFen: r.discount_fen,
    soldOutAt: r.sold_out_at,
    lastGrantAt: r.last_grant_at,
  }));
}

export async function verifyDatabaseInvariants(db: Kysely<Database>, campaignId: string): Promise<InvariantCheck[]> {
  const tiers = await tierReport(db, campaignId);
  const broken = tiers.filter((t) => t.granted > t.quota || t.granted + t.remaining !== t.quota || t.remaining < 0);
  const i1: InvariantCheck = {
    id: "I1",
    ok: tiers.length > 0 && broken.length === 0,
    detail:
      tiers.length === 0
        ? `no tiers found for campaign ${campaignId}`
        : broken.length === 0
          ? `${tiers.length} tiers: granted <= quota and granted + remaining = quota`
          : broken.map((t) => `${t.tierId}: granted ${t.granted} + remaining ${t.remaining} vs quota ${t.quota}`).join("; "),
  };

  const doubles = await sql<{ n: string }>`
    select count(*) as n from (
      select 1 from attempts where campaign_id = ${campaignId} and status = 'granted'
       group by activity_id, payer_id having count(*) > 1) d`.execute(db);
  const doubleCount = Number(doubles.rows[0]?.n ?? 0);
  const i2: InvariantCheck = { id: "I2", ok: doubleCount === 0, detail: `${doubleCount} payers hold more than one voucher in an activity` };

  const dupTxn = await sql<{ n: string }>`
    select count(*) as n from (select 1 from attempts group by acquirer_id, txn_id having count(*) > 1) d`.execute(db);
  const dupCount = Number(dupTxn.rows[0]?.n ?? 0);
  const i4: InvariantCheck = { id: "I4", ok: dupCount === 0, detail: `${dupCount} txnIds with more than one stored decision` };

  const stranded = await sql<{ n: string; sample: string | null }>`
    with state as materialized (
      select t.campaign_id, t.id, t.activity_id, t.threshold_fen, t.sold_out_at,
             t.pool + coalesce((select sum(remaining) from tier_shares s where s.campaign_id = t.campaign_id and s.tier_id = t.id), 0) as remaining,
             (select max(decided_at) from attempts g where g.status = 'granted' and g.campaign_id = t.campaign_id and g.tier_id = t.id) as last_grant_at
        from tiers t where t.campaign_id = ${campaignId}),
    refusals as materialized (
      select a.txn_id, a.activity_id, a.amount_fen, a.decided_at
        from attempts a where a.campaign_id = ${campaignId} and a.reason = 'sold_out'),
    qualifying as (
      select r.txn_id, r.decided_at, s.id as tier_id, s.remaining, s.sold_out_at, s.last_grant_at,
             rank() over (partition by r.txn_id order by s.threshold_fen desc) as rk
        from refusals r join state s on s.activity_id = r.activity_id and s.threshold_fen <= r.amount_fen)
    select count(*) as n, min(q.txn_id || ' (' || q.tier_id || ')') as sample
      from qualifying q, campaigns c
     where c.id = ${campaignId}
       and (c.tier_policy = 'best_available' or q.rk = 1)
       and (q.remaining > 0 or q.last_grant_at > q.decided_at)`.execute(db);
  const strandedCount = Number(stranded.rows[0]?.n ?? 0);
  const refusals = await sql<{ n: string }>`select count(*) as n from attempts where campaign_id = ${campaignId} and reason = 'sold_out'`.execute(db);
  const i6: InvariantCheck = {
    id: "I6",
    ok: strandedCount === 0,
    detail:
      strandedCount === 0
        ? `${Number(refusals.rows[0]?.n ?? 0)} sold_out refusals, each on tiers empty everywhere at the time`
        : `${strandedCount} sold_out refusals while stock remained, e.g. ${stranded.rows[0]?.sample}`,
  };
  const spent = await sql<{ budget_fen: number | null; budget_capped: boolean; budget_left_fen: number; spent_fen: string | null; grants_without_discount: string }>`
    select c.budget_fen, c.budget_capped, c.budget_left_fen,
           (select sum(a.discount_fen) from attempts a where a.campaign_id = c.id and a.status = 'granted') as spent_fen,
           (select count(*) from attempts a where a.campaign_id = c.id and a.status = 'granted'
               and a.discount_fen is distinct from (select t.discount_fen from tiers t where t.campaign_id = a.campaign_id and t.id = a.tier_id))
             as grants_without_discount
      from campaigns c where c.id = ${campaignId}`.execute(db);
  const b = spent.rows[0];
  const spentFen = Number(b?.spent_fen ?? 0);
  const wrongDiscount = Number(b?.grants_without_discount ?? 0);
  // A capped campaign's counter must agree with its grants: budget left + spent = budget.
  const counterOff = b !== undefined && b.budget_capped && Number(b.budget_left_fen) + spentFen !== Number(b.budget_fen);
  const budget: InvariantCheck = {
    id: "budget",
    ok: b !== undefined && b.budget_fen !== null && spentFen <= b.budget_fen && wrongDiscount === 0 && !counterOff,
    detail:
      b === undefined
        ? `campaign ${campaignId} not found`
        : `discounts granted ${(spentFen / 100).toFixed(2)} of a ${(Number(b.budget_fen) / 100).toFixed(2)} CNY budget` +
          (b.budget_capped ? ` (capped: ${(Number(b.budget_left_fen) / 100).toFixed(2)} CNY left${counterOff ? ", which does not match the grants" : ""})` : "") +
          `; ${wrongDiscount} grants whose discount differs from their tier's`,
  };
  return [i1, i2, i4, i6, budget];
}

/**
 * I3 from the caller's side: every acknowledged (200/202) txn has exactly one
 * stored decision. Returns the keys that have none.
 */
export async function undecided(db: Kysely<Database>, acknowledged: readonly { acquirerId: string; txnId: string }[]): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < acknowledged.length; i += 10_000) {
    const slice = acknowledged.slice(i, i + 10_000);
    const rows = await sql<{ acquirer_id: string; txn_id: string }>`
      select k.acquirer_id, k.txn_id
        from unnest(${slice.map((k) => k.acquirerId)}::text[], ${slice.map((k) => k.txnId)}::text[]) as k(acquirer_id, txn_id)
       where not exists (select 1 from attempts a where a.acquirer_id = k.acquirer_id and a.txn_id = k.txn_id)`.execute(db);
    for (const r of rows.rows) missing.push(`${r.acquirer_id}/${r.txn_id}`);
  }
  return missing;
}

/**
 * Polls until every acknowledged txn has a stored decision or timeoutMs has
 * passed; returns the keys still undecided (empty when the backlog drained).
 */
export async function waitUntilDecided(
  db: Kysely<Database>,
  acknowledged: readonly { acquirerId: string; txnId: string }[],
  options: { timeoutMs: number; pollMs: number; onWait?: (missing: number) => void },
): Promise<string[]> {
  const deadline = Date.now() + options.timeoutMs;
  let missing = await undecided(db, acknowledged);
  while (missing.length > 0 && Date.now() < deadline) {
    options.onWait?.(missing.length);
    await new Promise((r) => setTimeout(r, options.pollMs));
    missing = await undecided(db, acknowledged);
  }
  return missing;
}

/**
 * Fairness in first-come-first-served terms: the largest time by which an
 * attempt refused sold_out arrived before a later-arriving attempt that was
 * granted a voucher of a tier the refused one qualified for. 0 when no
 * refusal was overtaken; null when nothing was refused.
 */
export async function inversionWindowMs(db: Kysely<Database>, campaignId: string): Promise<number | null> {
  // Per tier, the earliest refusal and the latest-arriving grant are all that matter: the window is
  // max over tiers of (last grant's arrival - first refusal's arrival), when positive. Two small
  // aggregates, materialized so neither is recomputed per row of the other.
  const rows = await sql<{ ms: number | null; refusals: string }>`
    with grants as materialized (
      select tier_id, max(received_at) as last_received from attempts
       where campaign_id = ${campaignId} and status = 'granted' group by tier_id),
    refusals as materialized (
      select t.id as tier_id, min(a.received_at) as first_refused, count(*) as n
        from attempts a
        join tiers t on t.campaign_id = a.campaign_id and t.activity_id = a.activity_id and t.threshold_fen <= a.amount_fen
       where a.campaign_id = ${campaignId} and a.reason = 'sold_out'
       group by t.id)
    select (select coalesce(sum(n), 0) from refusals) as refusals,
           coalesce(max(extract(epoch from g.last_received - r.first_refused) * 1000) filter (where g.last_received > r.first_refused), 0) as ms
      from refusals r join grants g using (tier_id)`.execute(db);
  const row = rows.rows[0];
  return !row || Number(row.refusals) === 0 ? null : Number(row.ms);
}
