import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";
import { checkSlots } from "./slot-check.js";

/**
 * The invariants that the database alone can prove for a campaign. Refunds can return a
 * voucher to its tier, so stock is read in time, not only now:
 *   I1 per tier: held (granted, voucher not returned) <= quota and
 *      held + pool + sum(shares) = quota.
 *   I2 per (activity, payer), by the campaign's refund slot policy (slot-check.ts):
 *      `kept`: at most one grant ever, and no slot released;
 *      `released`: each grant but the last had its voucher returned and its slot released by
 *      the time the next was decided (never two vouchers held at once), and every returned
 *      voucher released its slot.
 *   I6 every sold_out refusal, decided at d: each tier it qualified for held its whole quota
 *      at d (grants decided by d minus vouchers returned by d = quota). Exact, because a
 *      refund returns a voucher only after every batch that read the tier's sold-out mark
 *      has committed (refund-tx.ts).
 *   refunds: every returned voucher has exactly one refund that returned it, and no payment is
 *      refunded above its amount.
 * I3, I4 and I5 need the caller's view (what was acknowledged and answered, what was forged):
 * see checkAcknowledged (acknowledged-check.ts), the CLI's checkAnswers and the rush report.
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

export interface InvariantCheck {
  id: "I1" | "I2" | "I3" | "I4" | "I5" | "I6" | "budget" | "refunds" | "refund-phase";
  ok: boolean;
  detail: string;
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

export async function verifyDatabaseInvariants(db: Kysely<Database>, campaignId: string): Promise<InvariantCheck[]> {
  const tiers = await tierReport(db, campaignId);
  const broken = tiers.filter(
    (t) => t.held > t.quota || t.held + t.remaining !== t.quota || t.remaining < 0 || t.returned > t.granted,
  );
  const i1: InvariantCheck = {
    id: "I1",
    ok: tiers.length > 0 && broken.length === 0,
    detail:
      tiers.length === 0
        ? `no tiers found for campaign ${campaignId}`
        : broken.length === 0
          ? `${tiers.length} tiers: held <= quota and held + remaining = quota (${tiers.reduce((n, t) => n + t.returned, 0)} vouchers returned by refunds)`
          : broken
              .map(
                (t) =>
                  `${t.tierId}: held ${t.held} (granted ${t.granted} - returned ${t.returned}) + remaining ${t.remaining} vs quota ${t.quota}`,
              )
              .join("; "),
  };

  const i2 = await checkSlots(db, campaignId);

  // Per tier, a running count of vouchers out with payers (+1 at each grant, -1 at each return),
  // checked at each sold_out refusal: it must equal the quota. Ties: grants and returns first.
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
  const strandedCount = Number(stranded.rows[0]?.n ?? 0);
  const refusals = await sql<{
    n: string;
  }>`select count(*) as n from attempts where campaign_id = ${campaignId} and reason = 'sold_out'`.execute(db);
  const i6: InvariantCheck = {
    id: "I6",
    ok: strandedCount === 0,
    detail:
      strandedCount === 0
        ? `${Number(refusals.rows[0]?.n ?? 0)} sold_out refusals, each on tiers empty everywhere when it was decided`
        : `${strandedCount} sold_out refusals while stock remained, e.g. ${stranded.rows[0]?.sample}`,
  };
  const spent = await sql<{
    budget_fen: number | null;
    budget_capped: boolean;
    budget_left_fen: number;
    spent_fen: string | null;
    grants_without_discount: string;
  }>`
    select c.budget_fen, c.budget_capped, c.budget_left_fen,
           (select sum(a.discount_fen) from attempts a where a.campaign_id = c.id and a.status = 'granted' and a.voucher_returned_at is null) as spent_fen,
           (select count(*) from attempts a where a.campaign_id = c.id and a.status = 'granted'
               and a.discount_fen is distinct from (select t.discount_fen from tiers t where t.campaign_id = a.campaign_id and t.id = a.tier_id))
             as grants_without_discount
      from campaigns c where c.id = ${campaignId}`.execute(db);
  const b = spent.rows[0];
  const spentFen = Number(b?.spent_fen ?? 0);
  const wrongDiscount = Number(b?.grants_without_discount ?? 0);
  // A capped campaign's counter must agree with its grants net of returns: budget left + spent = budget.
  const counterOff =
    b !== undefined && b.budget_capped && Number(b.budget_left_fen) + spentFen !== Number(b.budget_fen);
  const budget: InvariantCheck = {
    id: "budget",
    ok: b !== undefined && b.budget_fen !== null && spentFen <= b.budget_fen && wrongDiscount === 0 && !counterOff,
    detail:
      b === undefined
        ? `campaign ${campaignId} not found`
        : `discounts held (granted net of refunds) ${(spentFen / 100).toFixed(2)} of a ${(Number(b.budget_fen) / 100).toFixed(2)} CNY budget` +
          (b.budget_capped
            ? ` (capped: ${(Number(b.budget_left_fen) / 100).toFixed(2)} CNY left${counterOff ? ", which does not match the grants" : ""})`
            : "") +
          `; ${wrongDiscount} grants whose discount differs from their tier's`,
  };
  const refundCheck = await sql<{
    returned_without: string;
    returns_without: string;
    over_refunded: string;
    refunds: string;
  }>`
    with campaign_refunds as materialized (
      select r.outcome, r.amount_fen, a.acquirer_id, a.txn_id, a.amount_fen as paid, a.voucher_returned_at
        from refunds r join attempts a on a.acquirer_id = r.acquirer_id and a.txn_id = r.txn_id
       where a.campaign_id = ${campaignId})
    select (select count(*) from attempts a where a.campaign_id = ${campaignId} and a.voucher_returned_at is not null
               and (select count(*) from refunds r where r.acquirer_id = a.acquirer_id and r.txn_id = a.txn_id and r.outcome = 'voucher_returned') <> 1)
             as returned_without,
           (select count(*) from campaign_refunds where outcome = 'voucher_returned' and voucher_returned_at is null) as returns_without,
           (select count(*) from (select 1 from campaign_refunds group by acquirer_id, txn_id having sum(amount_fen) > max(paid)) x) as over_refunded,
           (select count(*) from campaign_refunds) as refunds`.execute(db);
  const rc = refundCheck.rows[0]!;
  const refundProblems = [
    [Number(rc.returned_without), "vouchers returned without exactly one returning refund"],
    [Number(rc.returns_without), "returning refunds whose payment still holds its voucher"],
    [Number(rc.over_refunded), "payments refunded above their amount"],
  ] as const;
  const refundsCheck: InvariantCheck = {
    id: "refunds",
    ok: refundProblems.every(([n]) => n === 0),
    detail: refundProblems.some(([n]) => n > 0)
      ? refundProblems
          .filter(([n]) => n > 0)
          .map(([n, what]) => `${n} ${what}`)
          .join("; ")
      : `${Number(rc.refunds)} refunds: each returned voucher returned once, no payment refunded above its amount`,
  };
  return [i1, i2, i6, budget, refundsCheck];
}

/**
 * I3 from the caller's side: every acknowledged (200/202) txn has exactly one
 * stored decision. Returns the keys that have none.
 */
export async function undecided(
  db: Kysely<Database>,
  acknowledged: readonly { acquirerId: string; txnId: string }[],
): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < acknowledged.length; i += 10_000) {
    const slice = acknowledged.slice(i, i + 10_000);
    const rows = await sql<{ acquirer_id: string; txn_id: string }>`
      select k.acquirer_id, k.txn_id
        from unnest(${slice.map((k) => k.acquirerId)}::text[], ${slice.map((k) => k.txnId)}::text[]) as k(acquirer_id, txn_id)
       where not exists (select 1 from attempts a where a.acquirer_id = k.acquirer_id and a.txn_id = k.txn_id)`.execute(
      db,
    );
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
