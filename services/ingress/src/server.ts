import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Env } from "@quanta/config";
import { parseAcquirerSecrets, parsePayerKey } from "@quanta/contract";
import { CampaignCache, SoldOutTiers, connectFromEnv, ensurePartitionCount } from "@quanta/db";
import { ReplicaCounts, backlogMaxPerPartition, createRedis, isCluster, partitionQueue } from "@quanta/queue";
import { createLogger, watchPgPool } from "@quanta/telemetry";
import { buildApp } from "./app.js";
import { DecisionWaiter } from "./decision-waiter.js";
import { ImmediateStore } from "./immediate-store.js";
import { Intake, type IntakeOptions } from "./intake.js";

// How soon the ingress learns that a tier is empty everywhere (one small query each time).
const SOLD_OUT_REFRESH_MS = 250;
const CAMPAIGN_REFRESH_MS = 1_000;

export interface RunningIngress {
  app: FastifyInstance;
  port: number;
  ingressId: string;
  campaigns: CampaignCache;
  soldOut: SoldOutTiers;
  close(): Promise<void>;
}

/**
 * Wires an ingress from a parsed environment and starts listening. It holds nothing an
 * acknowledgement depends on: what it answers 200 is in Postgres, what it answers 202 is in a
 * queue job; any number of ingresses run behind any load balancer.
 */
export async function startIngress(env: Env, options: { host?: string } = {}): Promise<RunningIngress> {
  if (!env.QUANTA_ACQUIRER_SECRETS) throw new Error("QUANTA_ACQUIRER_SECRETS is required: id=secret[,id=secret…]");
  const secrets = parseAcquirerSecrets(env.QUANTA_ACQUIRER_SECRETS);
  const payerKey = parsePayerKey(env.QUANTA_PAYER_KEY);
  const log = createLogger("ingress", env.LOG_LEVEL);
  const ingressId = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const prefix = env.QUANTA_REDIS_PREFIX;

  const db = connectFromEnv(env, "quanta-ingress");
  await ensurePartitionCount(db.kysely, env.QUANTA_PARTITIONS);
  const redis = createRedis(env.REDIS_URL, `quanta-ingress-${ingressId}`);
  const registryRedis = createRedis(env.REDIS_URL, `quanta-ingress-reg-${ingressId}`, { autoPipelining: true });
  const subscriber = createRedis(env.REDIS_URL, `quanta-ingress-sub-${ingressId}`, { subscriber: true });
  const queues = Array.from({ length: env.QUANTA_PARTITIONS }, (_, p) => partitionQueue(redis, prefix, p));

  // 1 s: a paused activity (emergency stop) or a new merchant list reaches the tills within a second.
  const campaigns = new CampaignCache(
    db.kysely,
    (error) => log.warn({ err: error }, "campaign refresh failed; serving the last copy"),
    CAMPAIGN_REFRESH_MS,
  );
  await campaigns.start();
  const waiter = new DecisionWaiter(subscriber, prefix, ingressId, log, env.QUANTA_INGRESS_HELD_MAX);
  await waiter.start(redis);
  const soldOut = new SoldOutTiers(
    db.kysely,
    (error) => log.warn({ err: error }, "sold-out refresh failed"),
    SOLD_OUT_REFRESH_MS,
  );
  await soldOut.start();
  // On a cluster: how many replicas each master has, so that a job is confirmed on one (job-add.ts, confirmReplicated).
  const replicas = isCluster(redis) && env.QUANTA_REDIS_WAIT_REPLICAS > 0 ? new ReplicaCounts(redis, 1_000) : undefined;
  await replicas?.start();
  const immediates = new ImmediateStore(db.pool, db.kysely, {
    gapMs: env.QUANTA_GROUP_COMMIT_MS,
    batchMax: env.QUANTA_IMMEDIATE_BATCH_MAX,
    settleMs: env.QUANTA_OUTCOME_SETTLE_MS,
  });
  const intake = new Intake(
    {
      redis: registryRedis,
      queues,
      db: db.kysely,
      immediates,
      waits: waiter,
      ...(replicas && isCluster(redis) ? { replication: { queueRedis: redis, replicas } } : {}),
    },
    intakeOptions(env, ingressId),
  );

  watchPgPool(db.pool, env.QUANTA_PG_POOL_MAX);

  const app = buildApp({
    db: db.kysely,
    redis: registryRedis,
    secrets,
    payerKey,
    campaigns: () => campaigns.current(),
    soldOut,
    intake,
    waiter,
    log,
    prefix,
    partitionCount: env.QUANTA_PARTITIONS,
    settleMs: env.QUANTA_OUTCOME_SETTLE_MS,
  });
  await app.listen({ port: env.PORT, host: options.host ?? "127.0.0.1" });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : env.PORT;
  log.info({ port, ingressId, partitions: env.QUANTA_PARTITIONS }, "ingress listening");

  return {
    app,
    port,
    ingressId,
    campaigns,
    soldOut,
    close: async () => {
      waiter.stop();
      replicas?.stop();
      await app.close();
      campaigns.stop();
      soldOut.stop();
      await Promise.all(queues.map((q) => q.close()));
      subscriber.disconnect();
      registryRedis.disconnect();
      redis.disconnect();
      await db.close();
    },
  };
}

/** The intake's bounds and timings, each from its own setting (README, "Configuration"). */
function intakeOptions(env: Env, ingressId: string): IntakeOptions {
  return {
    prefix: env.QUANTA_REDIS_PREFIX,
    replyTo: ingressId,
    batchMax: env.QUANTA_INTAKE_BATCH_MAX,
    flushMs: env.QUANTA_INTAKE_FLUSH_MS,
    backlogMaxPerPartition: backlogMaxPerPartition(env.QUANTA_BACKLOG_MAX, env.QUANTA_PARTITIONS),
    retentionS: env.QUANTA_JOB_RETENTION_S,
    txnRegistryTtlS: env.QUANTA_TXN_REGISTRY_TTL_S,
    txnInFlightTtlS: env.QUANTA_TXN_IN_FLIGHT_TTL_S,
    decisionWaitMs: env.QUANTA_DECISION_WAIT_MS,
    admitTimeoutMs: env.QUANTA_INTAKE_ADMIT_TIMEOUT_MS,
    pendingMax: env.QUANTA_INTAKE_PENDING_MAX,
    redisWaitReplicas: env.QUANTA_REDIS_WAIT_REPLICAS,
    redisWaitTimeoutMs: env.QUANTA_REDIS_WAIT_TIMEOUT_MS,
    settleMs: env.QUANTA_OUTCOME_SETTLE_MS,
  };
}
