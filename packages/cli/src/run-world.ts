import type { Campaign } from "@quanta/domain";
import { connect, dropDatabase } from "@quanta/db";
import { deletePrefix } from "./redis-cleanup.js";
import { loadCampaign, migrate } from "./setup.js";
import { serviceEnv } from "./stack.js";

/**
 * What a rush and a bench step open alike before their services start: their own database
 * (migrated, campaigns loaded), a Redis (the shared one under a prefix, or a private one started
 * here), the services' environment for one acquirer and its secret, and a connection to read the
 * database afterwards. When a step of the opening fails, what the earlier steps opened is removed
 * before the error goes on, so a caller only has to close a world it was given.
 */
export interface RunWorldOptions<R extends OwnRedis> {
  databaseUrl: string;
  partitions: number;
  campaigns: readonly Campaign[];
  /** The shared Redis, used when startRedis is not given or starts none. */
  redisUrl: string;
  /** Starts a private Redis (or cluster) for the run. */
  startRedis?: () => Promise<R | undefined>;
  prefix: string;
  acquirerId: string;
  secret: string;
  logLevel?: string;
  /** The connection's pool size, and its name in pg_stat_activity. */
  poolMax: number;
  applicationName: string;
  /** Leave the database in place when the opening fails, to look at it. */
  keepDatabase?: boolean;
}

export interface OwnRedis {
  url: string;
  stop(): Promise<void>;
}

export interface RunWorld<R extends OwnRedis> {
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
  env: NodeJS.ProcessEnv;
  db: ReturnType<typeof connect>;
  ownRedis?: R;
}

/** The URL of another database on the same server as `serverUrl` (same host, user and options). */
export function databaseUrlNamed(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function openRunWorld<R extends OwnRedis>(o: RunWorldOptions<R>): Promise<RunWorld<R>> {
  let ownRedis: R | undefined;
  try {
    await migrate(o.databaseUrl, o.partitions);
    for (const campaign of o.campaigns) await loadCampaign(o.databaseUrl, campaign, o.partitions);
    ownRedis = await o.startRedis?.();
    const redisUrl = ownRedis?.url ?? o.redisUrl;
    const env = serviceEnv({
      databaseUrl: o.databaseUrl,
      redisUrl,
      prefix: o.prefix,
      acquirerSecrets: `${o.acquirerId}=${o.secret}`,
      partitions: o.partitions,
      logLevel: o.logLevel,
    });
    const db = connect({
      connectionString: o.databaseUrl,
      poolMax: o.poolMax,
      statementTimeoutMs: 120_000,
      applicationName: o.applicationName,
    });
    return { databaseUrl: o.databaseUrl, redisUrl, prefix: o.prefix, env, db, ownRedis };
  } catch (error) {
    await ownRedis?.stop().catch(() => undefined);
    if (!o.keepDatabase) await dropDatabase(o.databaseUrl).catch(() => undefined);
    throw error;
  }
}

/**
 * Closes the connection, removes the run's keys (a private Redis is stopped instead: its files go
 * with it) and, unless kept, the database. The services must be stopped first.
 */
export async function closeRunWorld(world: RunWorld<OwnRedis>, keepDatabase = false): Promise<void> {
  await world.db.close();
  if (world.ownRedis) await world.ownRedis.stop();
  else await deletePrefix(world.redisUrl, world.prefix).catch(() => 0);
  if (!keepDatabase) await dropDatabase(world.databaseUrl).catch(() => undefined);
}
