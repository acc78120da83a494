import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import Fastify from "fastify";
import { sql } from "kysely";
import type { Env } from "@quanta/config";
import { CampaignCache, connectFromEnv, ensurePartitionCount } from "@quanta/db";
import { createRedis } from "@quanta/queue";
import { createLogger, registerOpsRoutes, watchPgPool } from "@quanta/telemetry";
import { Ownership, ownershipOptionsFromEnv } from "@quanta/owner";

export interface RunningWorker {
  workerId: string;
  port: number;
  ownership: Ownership;
  close(): Promise<void>;
}

/** Wires a worker: it owns its fair share of the partitions and decides their queued attempts. */
export async function startWorker(env: Env): Promise<RunningWorker> {
  const log = createLogger("worker", env.LOG_LEVEL);
  const workerId = `${hostname()}-${process.pid}-${randomBytes(2).toString("hex")}`;
  const db = connectFromEnv(env, "quanta-worker");
  await ensurePartitionCount(db.kysely, env.QUANTA_PARTITIONS);
  watchPgPool(db.pool, env.QUANTA_PG_POOL_MAX);
  const redis = createRedis(env.REDIS_URL, `quanta-worker-${workerId}`);
  const campaigns = new CampaignCache(db.kysely, (error) => log.warn({ err: error }, "campaign refresh failed"), 5_000);
  await campaigns.start();

  const ownership = new Ownership(db.kysely, db.pool, redis, campaigns, log, ownershipOptionsFromEnv(env, workerId));
  await ownership.start();

  const app = Fastify({ logger: false });
  registerOpsRoutes(app, {
    ready: () => Promise.all([sql`select 1`.execute(db.kysely), redis.ping()]),
    health: () => ({ partitions: ownership.owned() }),
  });
  await app.listen({ port: env.QUANTA_WORKER_PORT, host: process.env.HOST ?? "127.0.0.1" });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : env.QUANTA_WORKER_PORT;
  log.info({ workerId, port }, "worker started");

  return {
    workerId,
    port,
    ownership,
    close: async () => {
      await ownership.stop();
      campaigns.stop();
      await app.close();
      redis.disconnect();
      await db.close();
    },
  };
}
