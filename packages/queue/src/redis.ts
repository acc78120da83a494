import { readFileSync } from "node:fs";
import { Redis } from "ioredis";

export { Redis };

/**
 * One ioredis connection with quanta's scripts defined. BullMQ needs
 * maxRetriesPerRequest: null on connections that block; we use it everywhere
 * so that a Redis restart makes calls wait (bounded by our own timeouts)
 * rather than fail half-way.
 */
export interface QuantaRedis extends Redis {
  backlogReset(...keysAndArgs: string[]): Promise<number>;
  intakeAdmit(...keysAndArgs: (string | number)[]): Promise<unknown>;
  leaseRenew(key: string, owner: string, ms: number): Promise<number>;
  leaseRelease(key: string, owner: string): Promise<number>;
}

const lua = (name: string) => readFileSync(new URL(`../lua/${name}.lua`, import.meta.url), "utf8");

export function createRedis(url: string, name: string, options: { autoPipelining?: boolean } = {}): QuantaRedis {
  const redis = new Redis(url, {
    // Commands issued in the same tick leave in one write: under load one syscall carries many
    // attempts' registry checks. Not for connections handed to BullMQ.
    enableAutoPipelining: options.autoPipelining ?? false,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: name,
    retryStrategy: (times) => Math.min(50 * times, 1_000),
  });
  redis.defineCommand("backlogReset", { lua: lua("backlog-reset") });
  redis.defineCommand("intakeAdmit", { lua: lua("intake-admit") });
  redis.defineCommand("leaseRenew", { numberOfKeys: 1, lua: lua("lease-renew") });
  redis.defineCommand("leaseRelease", { numberOfKeys: 1, lua: lua("lease-release") });
  // Errors surface on the calls that fail; an unhandled 'error' event must not kill the process.
  redis.on("error", () => undefined);
  return redis as QuantaRedis;
}
