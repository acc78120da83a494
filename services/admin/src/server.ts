import type { FastifyInstance } from "fastify";
import type { Env } from "@quanta/config";
import { parseAcquirerSecrets } from "@quanta/contract";
import { connectFromEnv, ensurePartitionCount } from "@quanta/db";
import { createLogger } from "@quanta/telemetry";
import { buildAdminApp } from "./app.js";
import { AdminTokens } from "./tokens.js";

export interface RunningAdmin {
  app: FastifyInstance;
  port: number;
  close(): Promise<void>;
}

export async function startAdmin(env: Env, options: { host?: string } = {}): Promise<RunningAdmin> {
  const log = createLogger("admin", env.LOG_LEVEL);
  const acquirers = env.QUANTA_ACQUIRER_SECRETS
    ? parseAcquirerSecrets(env.QUANTA_ACQUIRER_SECRETS)
    : new Map<string, string>();
  const tokens = new AdminTokens(env.QUANTA_ADMIN_TOKENS ?? "", acquirers);
  if (tokens.unscoped.length > 0) {
    log.warn(
      { names: tokens.unscoped },
      "QUANTA_ADMIN_TOKENS: tokens without a scope (name=token) may only read; give them one as name:operate=token or name:administer=token",
    );
  }
  const db = connectFromEnv(env, "quanta-admin");
  // The admin loads campaigns, splitting stock over QUANTA_PARTITIONS: with a count other than
  // the database's, the shares would not match the partitions the workers decide.
  await ensurePartitionCount(db.kysely, env.QUANTA_PARTITIONS).catch(async (error: unknown) => {
    await db.close();
    throw error;
  });
  const app = buildAdminApp({ db: db.kysely, tokens, partitionCount: env.QUANTA_PARTITIONS, log });
  await app.listen({ port: env.QUANTA_ADMIN_PORT, host: options.host ?? "127.0.0.1" });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : env.QUANTA_ADMIN_PORT;
  log.info({ port }, "admin API listening");
  return {
    app,
    port,
    close: async () => {
      await app.close();
      await db.close();
    },
  };
}
