import { sql, type Kysely } from "kysely";

/**
 * The core schema. Constraints are the last line of defence for the
 * invariants, whatever the application does:
 *   I1  CHECK remaining >= 0 on every share and on the pool (stock cannot go
 *       below zero, so grants cannot exceed quota);
 *   I2  one granted attempt per (campaign, activity, payer): partial unique index,
 *       payer first, because the worker asks "which of these payers hold a voucher";
 *   I4  one decision per (acquirer, txnId): primary key.
 * Trade-off: the grant counter is not a column (it would be one hot row);
 * granted = count of granted attempts, and verify checks
 * granted + pool + sum(shares) = quota.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("settings")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("value", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("campaigns")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("budget_fen", "bigint", (c) => c.notNull().check(sql`budget_fen > 0`))
    .addColumn("window_start", "timestamptz", (c) => c.notNull())
    .addColumn("window_end", "timestamptz", (c) => c.notNull())
    .addColumn("tier_policy", "text", (c) => c.notNull().check(sql`tier_policy in ('best_available', 'exact')`))
    .addColumn("loaded_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint("campaigns_window", sql`window_end >= window_start`)
    .execute();

  await db.schema
    .createTable("activities")
    .addColumn("campaign_id", "text", (c) => c.notNull().references("campaigns.id").onDelete("cascade"))
    .addColumn("id", "text", (c) => c.notNull())
    .addColumn("position", "integer", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("activities_pk", ["campaign_id", "id"])
    .addUniqueConstraint("activities_position", ["campaign_id", "position"])
    .execute();

  await db.schema
    .createTable("activity_merchants")
    .addColumn("campaign_id", "text", (c) => c.notNull())
    .addColumn("activity_id", "text", (c) => c.notNull())
    .addColumn("merchant_id", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("activity_merchants_pk", ["campaign_id", "activity_id", "merchant_id"])
    .addForeignKeyConstraint(
      "activity_merchants_activity",
      ["campaign_id", "activity_id"],
      "activities",
      ["campaign_id", "id"],
      (fk) => fk.onDelete("cascade"),
    )
    .execute();

  await db.schema
    .createTable("tiers")
    .addColumn("campaign_id", "text", (c) => c.notNull())
    .addColumn("id", "text", (c) => c.notNull())
    .addColumn("activity_id", "text", (c) => c.notNull())
    .addColumn("threshold_fen", "bigint", (c) => c.notNull().check(sql`threshold_fen > 0`))
    .addColumn("discount_fen", "bigint", (c) => c.notNull().check(sql`discount_fen > 0`))
    .addColumn("quota", "integer", (c) => c.notNull().check(sql`quota > 0`))
    .addColumn("pool", "integer", (c) => c.notNull())
    .addColumn("chunk", "integer", (c) => c.notNull().check(sql`chunk > 0`))
    .addColumn("sold_out_at", "timestamptz")
    .addPrimaryKeyConstraint("tiers_pk", ["campaign_id", "id"])
    .addForeignKeyConstraint(
      "tiers_activity",
      ["campaign_id", "activity_id"],
      "activities",
      ["campaign_id", "id"],
      (fk) => fk.onDelete("cascade"),
    )
    .addCheckConstraint("tiers_pool_in_range", sql`pool >= 0 and pool <= quota`)
    .addCheckConstraint("tiers_discount_below_threshold", sql`discount_fen < threshold_fen`)
    .execute();

  await db.schema
    .createTable("tier_shares")
    .addColumn("campaign_id", "text", (c) => c.notNull())
    .addColumn("tier_id", "text", (c) => c.notNull())
    .addColumn("partition", "integer", (c) => c.notNull())
    .addColumn("remaining", "integer", (c) => c.notNull())
    .addPrimaryKeyConstraint("tier_shares_pk", ["campaign_id", "tier_id", "partition"])
    .addForeignKeyConstraint("tier_shares_tier", ["campaign_id", "tier_id"], "tiers", ["campaign_id", "id"], (fk) =>
      fk.onDelete("cascade"),
    )
    .addCheckConstraint("tier_shares_remaining_non_negative", sql`remaining >= 0`)
    .execute();

  await db.schema
    .createTable("partitions")
    .addColumn("partition", "integer", (c) => c.primaryKey())
    .addColumn("owner", "text")
    .addColumn("epoch", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("acquired_at", "timestamptz")
    .execute();

  await db.schema
    .createTable("attempts")
    .addColumn("acquirer_id", "text", (c) => c.notNull())
    .addColumn("txn_id", "text", (c) => c.notNull())
    .addColumn("body_hash", "text", (c) => c.notNull())
    .addColumn("payer_id", "text", (c) => c.notNull())
    .addColumn("merchant_id", "text", (c) => c.notNull())
    .addColumn("amount_fen", "bigint", (c) => c.notNull().check(sql`amount_fen > 0`))
    .addColumn("paid_at", "timestamptz", (c) => c.notNull())
    .addColumn("received_at", "timestamptz", (c) => c.notNull())
    .addColumn("decided_at", "timestamptz", (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .addColumn("partition", "integer", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull().check(sql`status in ('granted', 'rejected')`))
    .addColumn("reason", "text")
    .addColumn("campaign_id", "text")
    .addColumn("activity_id", "text")
    .addColumn("tier_id", "text")
    .addColumn("discount_fen", "bigint")
    .addColumn("payable_fen", "bigint")
    .addColumn("decided_by", "text", (c) => c.notNull().check(sql`decided_by in ('ingress', 'worker')`))
    .addPrimaryKeyConstraint("attempts_pk", ["acquirer_id", "txn_id"])
    .addCheckConstraint(
      "attempts_decision_shape",
      sql`(status = 'granted' and reason is null and tier_id is not null and activity_id is not null
           and discount_fen > 0 and payable_fen = amount_fen - discount_fen)
       or (status = 'rejected' and reason is not null and tier_id is null and discount_fen is null and payable_fen is null)`,
    )
    .addCheckConstraint(
      "attempts_reason",
      sql`reason is null or reason in ('below_threshold', 'merchant_not_eligible', 'outside_window',
          'already_redeemed', 'sold_out', 'budget_exhausted')`,
    )
    .execute();

  await sql`create unique index attempts_one_grant_per_payer on attempts (payer_id, campaign_id, activity_id) where status = 'granted'`.execute(
    db,
  );
  await sql`create index attempts_granted_by_tier on attempts (campaign_id, tier_id, decided_at) where status = 'granted'`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    "attempts",
    "partitions",
    "tier_shares",
    "tiers",
    "activity_merchants",
    "activities",
    "campaigns",
    "settings",
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
