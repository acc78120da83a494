import type { QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

// Room is reserved by intake-admit.lua (with the txn registrations of the same batch).
export async function releaseBacklog(redis: QuantaRedis, prefix: string, n: number): Promise<void> {
  await redis.decrby(keys.backlog(prefix), n);
}

export async function readBacklog(redis: QuantaRedis, prefix: string): Promise<number> {
  return Math.max(0, Number((await redis.get(keys.backlog(prefix))) ?? 0));
}

export async function resetBacklogIfIdle(redis: QuantaRedis, prefix: string, partitionCount: number): Promise<boolean> {
  const ks: string[] = [keys.backlog(prefix)];
  for (let p = 0; p < partitionCount; p++) {
    ks.push(keys.bull(prefix, p, "wait"), keys.bull(prefix, p, "active"), keys.bull(prefix, p, "delayed"), keys.bull(prefix, p, "prioritized"));
  }
  return (await redis.backlogReset(String(ks.length), ...ks)) === 1;
}
