import { randomBytes } from "node:crypto";
import type { Campaign } from "@quanta/domain";
import { connect, deadlocksOnceQuiet, dropDatabase, type Db } from "@quanta/db";
import { SEED_CAMPAIGN_PATH, deletePrefix, loadCampaign, migrate, readCampaignFile, serviceEnv } from "@quanta/cli";

/**
 * An isolated world for one integration test file: its own Postgres
 * database and Redis prefix on the machine's real servers, removed again by
 * cleanup(). Nothing is mocked.
 */
export interface TestWorld {
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
  acquirerId: string;
  secret: string;
  /** The secret of the world's second acquirer, acq-other (for cross-acquirer tests). */
  otherSecret: string;
  env: NodeJS.ProcessEnv;
  db: Db;
  cleanup(): Promise<void>;
}

/**
 * The environment of a test that checks decisions, not their speed: the longest decision wait the
 * setting allows (QUANTA_DECISION_WAIT_MS, 30 s), so a decision a busy machine slows past the
 * default 2 s is still answered 200 and not 202, which the contract allows and such a test would
 * read as a failure. Tests of the 202 path set a short wait of their own.
 */
export const PATIENT_ENV: NodeJS.ProcessEnv = { QUANTA_DECISION_WAIT_MS: "30000" };

export async function createTestWorld(
  name: string,
  options: { campaigns?: Campaign[]; partitions?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<TestWorld> {
  const base = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const tag = `${name.replace(/[^A-Za-z0-9_]/g, "_")}_${process.pid}_${randomBytes(2).toString("hex")}`;
  const url = new URL(base);
  url.pathname = `/quanta_test_${tag}`.slice(0, 64);
  const databaseUrl = url.toString();
  const prefix = `${process.env.QUANTA_TEST_REDIS_PREFIX ?? "quanta-test"}-${tag}`;
  const partitions = options.partitions ?? 4;
  const acquirerId = "acq-test";
  const secret = randomBytes(16).toString("hex");
  const otherSecret = randomBytes(16).toString("hex");

  await migrate(databaseUrl, partitions);
  for (const campaign of options.campaigns ?? [readCampaignFile(SEED_CAMPAIGN_PATH)])
    await loadCampaign(databaseUrl, campaign, partitions);
  const db = connect({
    connectionString: databaseUrl,
    poolMax: 4,
    statementTimeoutMs: 120_000,
    applicationName: "quanta-test",
  });
  const env: NodeJS.ProcessEnv = {
    ...serviceEnv({
      databaseUrl,
      redisUrl,
      prefix,
      acquirerSecrets: `${acquirerId}=${secret},acq-other=${otherSecret}`,
      partitions,
      logLevel: process.env.LOG_LEVEL ?? "error",
    }),
    ...options.env,
  };
  return {
    databaseUrl,
    redisUrl,
    prefix,
    acquirerId,
    secret,
    otherSecret,
    env,
    db,
    cleanup: async () => {
      await db.close();
      await deletePrefix(redisUrl, prefix).catch(() => 0);
      if (!process.env.QUANTA_TEST_KEEP_DB) await dropDatabase(databaseUrl).catch(() => undefined);
    },
  };
}

/**
 * Waits until `count` sessions of the given application_name in the world's database are waiting
 * on a lock (pg_stat_activity: wait_event_type 'Lock'), and returns what they run. How lock tests
 * prove that a statement waits for another session: by looking at it, not at a clock.
 */
export async function sessionsWaitingOnLock(
  world: TestWorld,
  applicationName: string,
  count = 1,
  timeoutMs = 30_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = (
      await world.db.pool.query<{ query: string }>(
        `select query from pg_stat_activity
          where datname = current_database() and application_name = $1 and wait_event_type = 'Lock'`,
        [applicationName],
      )
    ).rows;
    if (rows.length >= count) return rows.map((r) => r.query);
    if (Date.now() > deadline)
      throw new Error(
        `${count} session(s) of ${applicationName} waiting on a lock: not within ${timeoutMs} ms (saw ${rows.length})`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The deadlocks Postgres has detected in the world's database, once the services' sessions have
 * left (`alsoOurs`: application names of the test's own sessions that stay open).
 */
export async function deadlocksIn(world: TestWorld, alsoOurs: readonly string[] = []): Promise<number> {
  return deadlocksOnceQuiet(world.db.kysely, ["quanta-test", ...alsoOurs]);
}
