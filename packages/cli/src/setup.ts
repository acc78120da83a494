import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { parseCampaignFile, type Campaign } from "@quanta/domain";
import {
  CampaignLoadRefusedError,
  connect,
  ensureDatabase,
  ensurePartitionCount,
  insertCampaign,
  migrateToLatest,
} from "@quanta/db";

export const SEED_CAMPAIGN_PATH = new URL("../../../campaigns/qianan-2020-b2.json", import.meta.url);

export function readCampaignFile(path: string | URL): Campaign {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`cannot read campaign file ${String(path)}: ${(error as Error).message}`);
  }
  return parseCampaignFile(json);
}

/** Creates the database if needed and brings its schema to the latest migration. */
export async function migrate(databaseUrl: string, partitionCount: number): Promise<string[]> {
  await ensureDatabase(databaseUrl);
  const db = connect({
    connectionString: databaseUrl,
    poolMax: 2,
    statementTimeoutMs: 60_000,
    applicationName: "quanta-migrate",
  });
  try {
    const applied = await migrateToLatest(db.kysely);
    await ensurePartitionCount(db.kysely, partitionCount);
    return applied;
  } finally {
    await db.close();
  }
}

/**
 * Loads a campaign with its audit record, as the admin API does; the actor is `cli:<OS user>`
 * (a ':' no admin token's name can hold). Throws CampaignLoadRefusedError when refused.
 */
export async function loadCampaign(
  databaseUrl: string,
  campaign: Campaign,
  partitionCount: number,
  actor = cliActor(),
): Promise<void> {
  const db = connect({
    connectionString: databaseUrl,
    poolMax: 2,
    statementTimeoutMs: 60_000,
    applicationName: "quanta-load",
  });
  try {
    await ensurePartitionCount(db.kysely, partitionCount);
    const load = await insertCampaign(db.kysely, campaign, partitionCount, actor);
    if (!load.loaded) throw new CampaignLoadRefusedError(load.refusal);
  } finally {
    await db.close();
  }
}

export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return "cli:unknown"; // a container user without a passwd entry
  }
}
