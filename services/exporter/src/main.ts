import Fastify from "fastify";
import { sql } from "kysely";
import { parseEnv } from "@quanta/config";
import { connect } from "@quanta/db";
import { createRedis } from "@quanta/queue";
import { closeOnSignal, createLogger, registerOpsRoutes } from "@quanta/telemetry";
import { createExporter } from "./collect.js";

const env = parseEnv();
const log = createLogger("exporter", env.LOG_LEVEL);
const db = connect({
  connectionString: env.DATABASE_URL,
  poolMax: 2,
  statementTimeoutMs: 5_000,
  applicationName: "quanta-exporter",
});
const redis = createRedis(env.REDIS_URL, "quanta-exporter");
const exporter = createExporter(db.kysely, redis, env.QUANTA_REDIS_PREFIX);

const app = Fastify({ logger: false });
registerOpsRoutes(app, {
  ready: () => Promise.all([sql`select 1`.execute(db.kysely), redis.ping()]),
  metrics: () => exporter.scrape(),
  contentType: exporter.registry.contentType,
});
await app.listen({ port: env.QUANTA_EXPORTER_PORT, host: process.env.HOST ?? "127.0.0.1" });
log.info({ port: env.QUANTA_EXPORTER_PORT }, "exporter listening");
process.send?.({ ready: "exporter", port: (app.server.address() as { port: number }).port, id: "exporter" });

closeOnSignal(async () => {
  await app.close();
  redis.disconnect();
  await db.close();
});
