import { sql, type Kysely } from "kysely";

/**
 * attempts_granted_by_tier led with campaign_id, so for a holder check
 * (payer, campaign, activity) on a never-analyzed `attempts` (the first
 * minutes of a campaign, exactly the rush) the planner could pick it and
 * filter every grant of the campaign instead of the one-grant-per-payer
 * index: ~1 ms per row at 5,000 grants, growing. Tier first leaves it useful
 * to the per-tier queries (verify, exporter, bench) and useless to holder
 * checks, whatever the statistics say.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists attempts_granted_by_tier`.execute(db);
  await sql`create index attempts_granted_by_tier on attempts (tier_id, campaign_id, decided_at) where status = 'granted'`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists attempts_granted_by_tier`.execute(db);
  await sql`create index attempts_granted_by_tier on attempts (campaign_id, tier_id, decided_at) where status = 'granted'`.execute(
    db,
  );
}
