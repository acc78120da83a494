import { randomBytes } from "node:crypto";
import { dropDatabase } from "@quanta/db";
import type { Campaign } from "@quanta/domain";
import { loadScenario, type Scenario } from "@quanta/loadtest";
import { SEED_CAMPAIGN_PATH, readCampaignFile } from "./setup.js";
import { startQuanta, stopService, type ServiceProcess } from "./stack.js";
import { PrivateRedisCluster } from "./redis-cluster.js";
import { closeRunWorld, databaseUrlNamed, openRunWorld, type OwnRedis, type RunWorld } from "./run-world.js";
import type { Owners } from "./owners.js";
import type { RushSettings } from "./rush-settings.js";

/**
 * What a rush runs in, all of it its own: a private database (quanta_rush, recreated) with the
 * campaign, a private Redis prefix (or a private Redis Cluster), an acquirer and its secret, one
 * or more ingresses and the workers settled on their partitions. openRushWorld prints what it
 * opened; when it fails half-way it closes what it had opened, and closeRushWorld removes all of it.
 */
export interface RushWorld extends RunWorld<PrivateRedisCluster> {
  settings: RushSettings;
  out: (line: string) => void;
  scenario: Scenario;
  campaign: Campaign;
  acquirerId: string;
  secret: string;
  runId: string;
  /** Every process started, ingresses first. */
  services: ServiceProcess[];
  ingresses: ServiceProcess[];
  baseUrl: string;
  baseUrls: string[];
  /** Which worker owned which partitions when the load started. */
  owners: Owners;
}

export async function openRushWorld(settings: RushSettings, shape: (s: Scenario) => Scenario): Promise<RushWorld> {
  const out = settings.out;
  const scenario = shape(applyOverrides(loadScenario(settings.scenarioPath), settings));
  const campaign = readCampaignFile(settings.campaignPath ?? SEED_CAMPAIGN_PATH);
  const databaseUrl = databaseUrlNamed(settings.databaseUrl, settings.databaseName ?? "quanta_rush");
  const prefix = settings.prefix ?? `quanta-rush-${process.pid}`;
  const acquirerId = "rush-acquirer";
  const secret = randomBytes(24).toString("hex");
  const runId = `r${Date.now().toString(36)}`;

  const ingressCount = settings.ingresses ?? 1;
  out(`quanta rush: ${scenario.name}`);
  out(
    `  database ${redactUrl(databaseUrl)} (recreated), redis prefix ${prefix}, ${settings.partitions} partitions, ${ingressCount} ingresses, ${settings.workers} workers`,
  );
  out(
    `  offered load: peak ${scenario.arrival.peakRatePerS}/s over ${scenario.durationS} s, ${scenario.payers.toLocaleString("en-US")} payers`,
  );

  await dropDatabase(databaseUrl);
  const world = await openRunWorld<PrivateRedisCluster>({
    databaseUrl,
    partitions: settings.partitions,
    campaigns: [campaign],
    redisUrl: settings.redisUrl,
    startRedis: settings.redisCluster ? () => PrivateRedisCluster.start() : undefined,
    prefix,
    acquirerId,
    secret,
    poolMax: 4,
    applicationName: "quanta-rush",
    keepDatabase: settings.keepDatabase,
  });
  out(
    `  campaign ${campaign.id} loaded: ${campaign.activities
      .flatMap((a) => a.tiers)
      .reduce((n, t) => n + t.quota, 0)
      .toLocaleString("en-US")} vouchers`,
  );
  const cluster = world.ownRedis;
  if (cluster)
    out(
      `  Redis Cluster: ${cluster.masters} masters, ${cluster.replicas} replica each, AOF always (${world.redisUrl})`,
    );
  const started = await startDeployment(world, settings);
  return { ...world, ...started, settings, out, scenario, campaign, acquirerId, secret, runId };
}

/**
 * The opening minute starts on a settled deployment: the ingresses, then the workers, each
 * partition with its owner. When a process fails to start, the world opened so far is closed.
 */
async function startDeployment(world: RunWorld<PrivateRedisCluster>, settings: RushSettings) {
  const out = settings.out;
  const ingressCount = settings.ingresses ?? 1;
  const services: ServiceProcess[] = [];
  try {
    const { ingresses, baseUrl, baseUrls, owners } = await startQuanta(world.env, {
      ingresses: ingressCount,
      workers: settings.workers,
      partitions: settings.partitions,
      services,
      stdio: "inherit",
    });
    out(`  ${ingresses.map((s, i) => `ingress on ${baseUrls[i]} (pid ${s.child.pid})`).join("; ")}`);
    out(`  ${owners.map((o) => `worker pid ${o.pid} owns partitions ${o.partitions.join(", ")}`).join("; ")}`);
    if (ingressCount > 1)
      out(
        "  callbacks go round robin over the ingresses, as a load balancer spreads them; a resend goes to another ingress than its first copy",
      );
    out("");
    return { services, ingresses, baseUrl, baseUrls, owners };
  } catch (error) {
    // The error that stopped the opening is the one to report, not a failure of the clean-up.
    await closeRushWorld({ ...world, services }, settings.keepDatabase).catch(() => undefined);
    throw error;
  }
}

/** Stops every process, then closes the connection and removes the Redis keys (or the cluster) and the database. */
export async function closeRushWorld(
  world: RunWorld<OwnRedis> & { services: readonly ServiceProcess[] },
  keepDatabase: boolean,
): Promise<void> {
  await Promise.all(world.services.map((s) => stopService(s)));
  await closeRunWorld(world, keepDatabase);
}

function applyOverrides(s: Scenario, settings: RushSettings): Scenario {
  return {
    ...s,
    durationS: settings.durationS ?? s.durationS,
    payers: settings.payers ?? s.payers,
    arrival: { ...s.arrival, peakRatePerS: settings.peakRatePerS ?? s.arrival.peakRatePerS },
  };
}

function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}
