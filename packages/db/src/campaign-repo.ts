import type { Kysely } from "kysely";
import { isBudgetCapped, sortTiersForChoice, type Activity, type Campaign, type Tier } from "@quanta/domain";
import type { Database } from "./schema.js";

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

export class CampaignExistsError extends Error {
  override readonly name = "CampaignExistsError";
}

/** Loads a whole campaign in one transaction: all of it or nothing. */
export async function insertCampaign(db: Kysely<Database>, campaign: Campaign, partitionCount: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom("campaigns").select("id").where("id", "=", campaign.id).executeTakeFirst();
    if (existing) throw new CampaignExistsError(`campaign ${campaign.id} is already loaded`);
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
      })
      .execute();
    for (const [position, activity] of campaign.activities.entries()) {
      await trx.insertInto("activities").values({ campaign_id: campaign.id, id: activity.id, position, name: activity.name }).execute();
      const merchants = [...activity.merchants];
      for (let i = 0; i < merchants.length; i += 5_000) {
        await trx
          .insertInto("activity_merchants")
          .values(merchants.slice(i, i + 5_000).map((m) => ({ campaign_id: campaign.id, activity_id: activity.id, merchant_id: m })))
          .execute();
      }
      for (const tier of activity.tiers) {
        const split = initialSplit(tier.quota, partitionCount);
        await trx
          .insertInto("tiers")
          .values({
            campaign_id: campaign.id,
            id: tier.id,
            activity_id: activity.id,
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
          .values(Array.from({ length: partitionCount }, (_, p) => ({ campaign_id: campaign.id, tier_id: tier.id, partition: p, remaining: split.share })))
          .execute();
      }
    }
  });
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
    activities: activities
      .filter((a) => a.campaign_id === c.id)
      .map((a): Activity => ({
        id: a.id,
        name: a.name,
        paused: a.paused_at !== null,
        merchants: new Set(merchants.filter((m) => m.campaign_id === c.id && m.activity_id === a.id).map((m) => m.merchant_id)),
        tiers: sortTiersForChoice(
          tiers
            .filter((t) => t.campaign_id === c.id && t.activity_id === a.id)
            .map((t): Tier => ({ id: t.id, activityId: a.id, thresholdFen: t.threshold_fen, discountFen: t.discount_fen, quota: t.quota })),
        ),
      })),
  }));
}
