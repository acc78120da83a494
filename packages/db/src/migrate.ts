import { Migrator, type Kysely, type Migration, type MigrationProvider } from "kysely";
import * as core from "./migrations/0001-core.js";
import * as grantIndexTierFirst from "./migrations/0002-grant-index-tier-first.js";
import * as budgetCap from "./migrations/0003-budget-cap.js";
import * as admin from "./migrations/0004-admin.js";
import * as refunds from "./migrations/0005-refunds.js";
import * as campaignOverrides from "./migrations/0006-campaign-overrides.js";
import * as settledDays from "./migrations/0007-settled-days.js";

/** Migrations are compiled in, not read from disk, so a built service migrates the same anywhere. */
const migrations: Record<string, Migration> = {
  "0001-core": core,
  "0002-grant-index-tier-first": grantIndexTierFirst,
  "0003-budget-cap": budgetCap,
  "0004-admin": admin,
  "0005-refunds": refunds,
  "0006-campaign-overrides": campaignOverrides,
  "0007-settled-days": settledDays,
};

class StaticProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new StaticProvider() });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
