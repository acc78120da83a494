import { randomBytes } from "node:crypto";
import type { Campaign } from "@quanta/domain";
import { warmUpCampaign } from "./bench-warm-up.js";
import { Probes } from "./bench-probes.js";
import { SEED_CAMPAIGN_PATH, readCampaignFile } from "./setup.js";
import { startQuanta, startService, stopService, type ServiceProcess } from "./stack.js";
import { closeRunWorld, databaseUrlNamed, openRunWorld, type OwnRedis, type RunWorld } from "./run-world.js";
import { PrivateRedis } from "./private-redis.js";
import { PrivateRedisCluster } from "./redis-cluster.js";
import type { BenchSettings, SystemName } from "./bench.js";

/**
 * What one bench step runs in, all of it its own: a fresh database with the seed campaign and the
 * warm-up campaign, a Redis prefix (on a private Redis for quanta-aof and quanta-cluster), an
 * acquirer secret, the system's processes, the probes that read the servers' counters, and a
 * connection for the figures read after the load (the part a rush opens alike is run-world.ts).
 * closeStepWorld removes all of it.
 */
export interface StepWorld extends RunWorld<OwnRedis> {
  dbName: string;
  acquirerId: string;
  secret: string;
  campaign: Campaign;
  /** Filled by startSystem: the ingress (or the baseline) first. */
  services: ServiceProcess[];
  probes: Probes;
}

export async function openStepWorld(
  settings: BenchSettings,
  system: SystemName,
  rep: number,
  rate: number,
): Promise<StepWorld> {
  const tag = `${system.replace(/-/g, "_")}_${rate}_${rep}_${randomBytes(2).toString("hex")}`;
  const dbName = `quanta_bench_${tag}`;
  const acquirerId = "bench-acquirer";
  const secret = randomBytes(16).toString("hex");
  const campaign = readCampaignFile(SEED_CAMPAIGN_PATH);
  const world = await openRunWorld<OwnRedis>({
    databaseUrl: databaseUrlNamed(settings.databaseUrl, dbName),
    partitions: settings.partitions,
    campaigns: [campaign, warmUpCampaign(SEED_CAMPAIGN_PATH)],
    redisUrl: settings.redisUrl,
    startRedis: async () =>
      system === "quanta-aof"
        ? await PrivateRedis.start()
        : system === "quanta-cluster"
          ? await PrivateRedisCluster.start()
          : undefined,
    prefix: `quanta-bench-${tag}`,
    acquirerId,
    secret,
    logLevel: "error",
    poolMax: 2,
    applicationName: "quanta-bench",
  });
  try {
    const probes = await Probes.open(world.redisUrl, world.databaseUrl);
    return { ...world, dbName, acquirerId, secret, campaign, services: [], probes };
  } catch (error) {
    // The error that stopped the opening is the one to report, not a failure of the clean-up.
    await closeRunWorld(world).catch(() => undefined);
    throw error;
  }
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
  await closeRunWorld(world);
}
