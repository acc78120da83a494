import { sql, type Kysely } from "kysely";
import type { Database, Trx } from "./schema.js";
import { tierReport, type TierReport } from "./verify-tier-report.js";

/**
 * What the admin API changes, each change in one transaction with its audit record (who, what,
 * on what, when, details): an action that is not recorded did not happen.
 */
export class NotFound extends Error {
  override readonly name = "NotFound";
}

export interface AuditRecord {
  actor: string;
  action: string;
  target: string;
  details: Record<string, unknown>;
}

/** Writes an audit record; called with the transaction of the change it records, never after it. */
export async function writeAudit(trx: Kysely<Database>, a: AuditRecord): Promise<void> {
  await trx
    .insertInto("admin_audit")
    .values({ actor: a.actor, action: a.action, target: a.target, details: JSON.stringify(a.details) })
    .execute();
}

/**
 * Locks an activity's row for the rest of the transaction, so two admin changes to one activity
 * take turns; NotFound when it does not exist.
 */
async function lockActivity(
  trx: Kysely<Database>,
  campaignId: string,
  activityId: string,
): Promise<{ paused_at: Date | null }> {
  const row = await trx
    .selectFrom("activities")
    .select("paused_at")
    .where("campaign_id", "=", campaignId)
    .where("id", "=", activityId)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new NotFound(`activity ${campaignId}/${activityId} does not exist`);
  return row;
}

/** Pauses (emergency stop) or resumes one activity. Returns whether the state changed. */
export async function setActivityPaused(
  db: Kysely<Database>,
  campaignId: string,
  activityId: string,
  paused: boolean,
  actor: string,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const row = await lockActivity(trx, campaignId, activityId);
    const changed = (row.paused_at !== null) !== paused;
    if (changed) {
      await trx
        .updateTable("activities")
        .set({ paused_at: paused ? sql<Date>`clock_timestamp()` : null })
        .where("campaign_id", "=", campaignId)
        .where("id", "=", activityId)
        .execute();
    }
    await writeAudit(trx, {
      actor,
      action: paused ? "activity.pause" : "activity.resume",
      target: `${campaignId}/${activityId}`,
      details: { changed },
    });
    return changed;
  });
}

/** Replaces an activity's merchant list; returns how many were added and removed. */
export async function replaceActivityMerchants(
  db: Kysely<Database>,
  campaignId: string,
  activityId: string,
  merchants: readonly string[],
  actor: string,
): Promise<{ added: number; removed: number }> {
  return db.transaction().execute(async (trx) => {
    await lockActivity(trx, campaignId, activityId);
    const before = new Set(
      (
        await trx
          .selectFrom("activity_merchants")
          .select("merchant_id")
          .where("campaign_id", "=", campaignId)
          .where("activity_id", "=", activityId)
          .execute()
      ).map((m) => m.merchant_id),
    );
    const after = new Set(merchants);
    const added = [...after].filter((m) => !before.has(m));
    const removed = [...before].filter((m) => !after.has(m));
    if (removed.length > 0) {
      await trx
        .deleteFrom("activity_merchants")
        .where("campaign_id", "=", campaignId)
        .where("activity_id", "=", activityId)
        .where("merchant_id", "in", removed)
        .execute();
    }
    await insertMerchants(trx, campaignId, activityId, added);
    await writeAudit(trx, {
      actor,
      action: "activity.merchants",
      target: `${campaignId}/${activityId}`,
      details: {
        added: added.slice(0, 100),
        removed: removed.slice(0, 100),
        addedCount: added.length,
        removedCount: removed.length,
      },
    });
    return { added: added.length, removed: removed.length };
  });
}

export interface CampaignStatus {
  campaignId: string;
  budgetFen: number;
  budgetCapped: boolean;
  budgetLeftFen: number | null;
  grantedFen: number;
  /** Discounts of vouchers that refunds returned. */
  refundedFen: number;
  /** grantedFen - refundedFen. */
  spentFen: number;
  activities: { id: string; paused: boolean; merchants: number }[];
  tiers: TierReport[];
}

export async function campaignStatus(db: Kysely<Database>, campaignId: string): Promise<CampaignStatus> {
  const c = await db.selectFrom("campaigns").selectAll().where("id", "=", campaignId).executeTakeFirst();
  if (!c) throw new NotFound(`campaign ${campaignId} is not loaded`);
  const activities = await sql<{ id: string; paused: boolean; merchants: string }>`
    select a.id, a.paused_at is not null as paused,
           (select count(*) from activity_merchants m where m.campaign_id = a.campaign_id and m.activity_id = a.id) as merchants
      from activities a where a.campaign_id = ${campaignId} order by a.position`.execute(db);
  const tiers = await tierReport(db, campaignId);
  return {
    campaignId,
    budgetFen: Number(c.budget_fen),
    budgetCapped: c.budget_capped,
    budgetLeftFen: c.budget_capped ? Number(c.budget_left_fen) : null,
    grantedFen: tiers.reduce((n, t) => n + t.granted * t.discountFen, 0),
    refundedFen: tiers.reduce((n, t) => n + t.returned * t.discountFen, 0),
    spentFen: tiers.reduce((n, t) => n + t.held * t.discountFen, 0),
    activities: activities.rows.map((a) => ({ id: a.id, paused: a.paused, merchants: Number(a.merchants) })),
    tiers,
  };
}

export async function readAudit(db: Kysely<Database>, limit: number) {
  return db.selectFrom("admin_audit").selectAll().orderBy("id", "desc").limit(limit).execute();
}

// Rows per INSERT of a merchant list: a county's list (tens of thousands) in a few statements,
// each well under Postgres's 65,535 bind parameters (3 per row).
const MERCHANT_ROWS_PER_INSERT = 5_000;

/** An activity's merchants, in inserts of MERCHANT_ROWS_PER_INSERT rows (a campaign load, a list replaced). */
export async function insertMerchants(
  trx: Trx,
  campaignId: string,
  activityId: string,
  merchants: readonly string[],
): Promise<void> {
  for (let i = 0; i < merchants.length; i += MERCHANT_ROWS_PER_INSERT) {
    await trx
      .insertInto("activity_merchants")
      .values(
        merchants
          .slice(i, i + MERCHANT_ROWS_PER_INSERT)
          .map((m) => ({ campaign_id: campaignId, activity_id: activityId, merchant_id: m })),
      )
      .execute();
  }
}
