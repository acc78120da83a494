import { sql, type Kysely } from "kysely";
import {
  checkCampaignLoad,
  describeOverlap,
  isBudgetCapped,
  sortTiersForChoice,
  type Activity,
  type Campaign,
  type CampaignOverlap,
  type Tier,
} from "@quanta/domain";
import { insertMerchants, writeAudit } from "./admin-repo.js";
import type { Database, Trx } from "./schema.js";

/**
 * Stock split at load: half of each tier's quota is spread over the
 * partitions, the rest stays in the pool and moves in chunks of about
 * quota / (8 x partitions). Trade-off: larger shares mean fewer refill
 * transactions, smaller ones spread the last vouchers more evenly.
 */
export function initialSplit(quota: number, partitionCount: number): { share: number; pool: number; chunk: number } {
  const share = Math.floor(quota / 2 / partitionCount);
  return { share, pool: quota - share * partitionCount, chunk: Math.max(1, Math.ceil(quota / (partitionCount * 8))) };
}

/** Why a campaign was not loaded; `code` is stable (the admin API answers it). */
export type CampaignLoadRefusal =
  | { readonly code: "campaign_exists"; readonly message: string }
  | { readonly code: "campaign_overlap"; readonly message: string; readonly overlaps: readonly CampaignOverlap[] }
  | { readonly code: "override_not_loaded"; readonly message: string; readonly campaignIds: readonly string[] };

export type CampaignLoad =
  { readonly loaded: true } | { readonly loaded: false; readonly refusal: CampaignLoadRefusal };

/** A refusal, for callers whose way to stop is to throw (the `quanta` CLI). */
export class CampaignLoadRefusedError extends Error {
  override readonly name = "CampaignLoadRefusedError";
  constructor(readonly refusal: CampaignLoadRefusal) {
    super(`${refusal.code}: ${refusal.message}`);
  }
}

/**
 * The name callers knew when an existing id was the only refusal (the CLI prints its message
 * without a stack); every refusal is one now.
 */
export const CampaignExistsError = CampaignLoadRefusedError;

/**
 * Loads a whole campaign and its audit record (`actor` loaded it) in one transaction: all of it
 * or nothing, and no campaign without its record. Refused, with nothing written: an id already
 * loaded, an overlap with a loaded campaign that the file does not declare (campaign-overlap.ts),
 * an `overrides` naming a campaign that is not loaded.
 */
export async function insertCampaign(
  db: Kysely<Database>,
  campaign: Campaign,
  partitionCount: number,
  actor: string,
): Promise<CampaignLoad> {
  return db.transaction().execute(async (trx): Promise<CampaignLoad> => {
    // Loads take turns: two overlapping campaigns loaded at once would each pass the check
    // against what is committed. A lock of its own, so decision rounds (which update campaign
    // rows of capped budgets) never wait for a load.
    await sql`select pg_advisory_xact_lock(hashtext('quanta.campaign-load'))`.execute(trx);
    const refusal = await loadRefusal(trx, campaign);
    if (refusal) return { loaded: false, refusal };
    await writeCampaign(trx, campaign);
    for (const [position, activity] of campaign.activities.entries()) {
      await writeActivity(trx, campaign.id, activity, position);
      for (const tier of activity.tiers) await writeTier(trx, campaign.id, activity.id, tier, partitionCount);
    }
    await writeAudit(trx, {
      actor,
      action: "campaign.load",
      target: campaign.id,
      details: { activities: campaign.activities.length, overrides: campaign.overrides ?? [] },
    });
    return { loaded: true };
  });
}

/** Why the campaign cannot be loaded (an id loaded already, an undeclared overlap, an override not loaded), or nothing. */
async function loadRefusal(trx: Trx, campaign: Campaign): Promise<CampaignLoadRefusal | undefined> {
  const existing = await trx.selectFrom("campaigns").select("id").where("id", "=", campaign.id).executeTakeFirst();
  if (existing) return { code: "campaign_exists", message: `campaign ${campaign.id} is already loaded` };
  const check = checkCampaignLoad(campaign, await readCampaigns(trx));
  if (check.kind === "override_not_loaded") {
    const message = `campaign ${campaign.id} overrides ${check.campaignIds.join(", ")}, which is not loaded: load it first, or leave it out of "overrides"`;
    return { code: "override_not_loaded", message, campaignIds: check.campaignIds };
  }
  if (check.kind === "overlap") {
    return {
      code: "campaign_overlap",
      message: check.overlaps.map((o) => describeOverlap(campaign.id, o)).join("\n"),
      overlaps: check.overlaps,
    };
  }
  return undefined;
}

async function writeCampaign(trx: Trx, campaign: Campaign): Promise<void> {
  await trx
    .insertInto("campaigns")
    .values({
      id: campaign.id,
      name: campaign.name,
      budget_fen: campaign.budgetFen,
      budget_capped: isBudgetCapped(campaign),
      budget_left_fen: campaign.budgetFen,
      window_start: new Date(campaign.windowStartMs),
      window_end: new Date(campaign.windowEndMs),
      tier_policy: campaign.tierPolicy,
      refund_slot: campaign.refundSlot ?? "kept",
      overrides: [...(campaign.overrides ?? [])],
    })
    .execute();
}

/** The activity's row and its merchant list. */
async function writeActivity(trx: Trx, campaignId: string, activity: Activity, position: number): Promise<void> {
  await trx
    .insertInto("activities")
    .values({ campaign_id: campaignId, id: activity.id, position, name: activity.name })
    .execute();
  await insertMerchants(trx, campaignId, activity.id, [...activity.merchants]);
}

/** The tier's row (its pool and refill chunk) and one share per partition (initialSplit). */
async function writeTier(
  trx: Trx,
  campaignId: string,
  activityId: string,
  tier: Tier,
  partitionCount: number,
): Promise<void> {
  const split = initialSplit(tier.quota, partitionCount);
  await trx
    .insertInto("tiers")
    .values({
      campaign_id: campaignId,
      id: tier.id,
      activity_id: activityId,
      threshold_fen: tier.thresholdFen,
      discount_fen: tier.discountFen,
      quota: tier.quota,
      pool: split.pool,
      chunk: split.chunk,
      sold_out_at: null,
    })
    .execute();
  await trx
    .insertInto("tier_shares")
    .values(
      Array.from({ length: partitionCount }, (_, p) => ({
        campaign_id: campaignId,
        tier_id: tier.id,
        partition: p,
        remaining: split.share,
      })),
    )
    .execute();
}

/** Every loaded campaign as domain objects (activities in order, tiers highest first). */
export async function readCampaigns(db: Kysely<Database>): Promise<Campaign[]> {
  const [campaigns, activities, merchants, tiers] = await Promise.all([
    db.selectFrom("campaigns").selectAll().execute(),
    db.selectFrom("activities").selectAll().orderBy("position").execute(),
    db.selectFrom("activity_merchants").selectAll().execute(),
    db.selectFrom("tiers").selectAll().execute(),
  ]);
  return campaigns.map((c): Campaign => ({
    id: c.id,
    name: c.name,
    budgetFen: c.budget_fen,
    windowStartMs: new Date(c.window_start).getTime(),
    windowEndMs: new Date(c.window_end).getTime(),
    tierPolicy: c.tier_policy,
    refundSlot: c.refund_slot,
    overrides: c.overrides,
    activities: activities
      .filter((a) => a.campaign_id === c.id)
      .map((a): Activity => ({
        id: a.id,
        name: a.name,
        paused: a.paused_at !== null,
        merchants: new Set(
          merchants.filter((m) => m.campaign_id === c.id && m.activity_id === a.id).map((m) => m.merchant_id),
        ),
        tiers: sortTiersForChoice(
          tiers
            .filter((t) => t.campaign_id === c.id && t.activity_id === a.id)
            .map((t): Tier => ({
              id: t.id,
              activityId: a.id,
              thresholdFen: t.threshold_fen,
              discountFen: t.discount_fen,
              quota: t.quota,
            })),
        ),
      })),
  }));
}
