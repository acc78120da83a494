import { randomBytes } from "node:crypto";
import type { Campaign } from "@quanta/domain";
import { connect, dropDatabase } from "@quanta/db";
import { warmUpCampaign } from "./bench-warm-up.js";
import { Probes } from "./bench-probes.js";
import { deletePrefix } from "./redis-cleanup.js";
import { SEED_CAMPAIGN_PATH, loadCampaign, migrate, readCampaignFile } from "./setup.js";
import { serviceEnv, startQuanta, startService, stopService, type ServiceProcess } from "./stack.js";
import { PrivateRedis } from "./private-redis.js";
import { PrivateRedisCluster } from "./redis-cluster.js";
import type { BenchSettings, SystemName } from "./bench.js";

/**
 * What one bench step runs in, all of it its own: a fresh database with the seed campaign and the
 * warm-up campaign, a Redis prefix (on a private Redis for quanta-aof and quanta-cluster), an
 * acquirer secret, the system's processes, the probes that read the servers' counters, and a
 * connection for the figures read after the load. closeStepWorld removes all of it.
 */
export interface StepWorld {
  dbName: string;
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
  acquirerId: string;
  secret: string;
  campaign: Campaign;
  env: NodeJS.ProcessEnv;
  /** Filled by startSystem: the ingress (or the baseline) first. */
  services: ServiceProcess[];
  probes: Probes;
  db: ReturnType<typeof connect>;
  ownRedis?: { stop(): Promise<void> };
}

export async function openStepWorld(
  settings: BenchSettings,
  system: SystemName,
  rep: number,
  rate: number,
): Promise<StepWorld> {
  const tag = `${system.replace(/-/g, "_")}_${rate}_${rep}_${randomBytes(2).toString("hex")}`;
  const dbName = `quanta_bench_${tag}`;
  const url = new URL(settings.databaseUrl);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  const prefix = `quanta-bench-${tag}`;
  const acquirerId = "bench-acquirer";
  const secret = randomBytes(16).toString("hex");
  await migrate(databaseUrl, settings.partitions);
  const campaign = readCampaignFile(SEED_CAMPAIGN_PATH);
  await loadCampaign(databaseUrl, campaign, settings.partitions);
  await loadCampaign(databaseUrl, warmUpCampaign(SEED_CAMPAIGN_PATH), settings.partitions);
  const ownRedis =
    system === "quanta-aof"
      ? await PrivateRedis.start()
      : system === "quanta-cluster"
        ? await PrivateRedisCluster.start()
        : undefined;
  const redisUrl = ownRedis?.url ?? settings.redisUrl;
  const env = serviceEnv({
    databaseUrl,
    redisUrl,
    prefix,
    acquirerSecrets: `${acquirerId}=${secret}`,
    partitions: settings.partitions,
    logLevel: "error",
  });
  const probes = await Probes.open(redisUrl, databaseUrl);
  const db = connect({
    connectionString: databaseUrl,
    poolMax: 2,
    statementTimeoutMs: 120_000,
    applicationName: "quanta-bench",
  });
  return {
    dbName,
    databaseUrl,
    redisUrl,
    prefix,
    acquirerId,
    secret,
    campaign,
    env,
    services: [],
    probes,
    db,
    ownRedis,
  };
}

/** quanta and its variants as `npm run rush` deploys them (one worker for quanta-1w); direct and floor alone. */
export async function startSystem(world: StepWorld, system: SystemName, partitions: number): Promise<void> {
  const { env, services } = world;
  if (system === "quanta" || system === "quanta-aof" || system === "quanta-1w" || system === "quanta-cluster") {
    await startQuanta(env, { workers: system === "quanta-1w" ? 1 : 2, partitions, services });
  } else {
    services.push(await startService(system, env));
  }
}

export async function closeStepWorld(world: StepWorld): Promise<void> {
  await Promise.all(world.services.map((s) => stopService(s, 5_000)));
  await world.probes.close();
  await world.db.close();
  await deletePrefix(world.redisUrl, world.prefix).catch(() => 0);
  await world.ownRedis?.stop();
  await dropDatabase(world.databaseUrl).catch(() => undefined);
}
