import type { QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

export async function reserveBacklog(redis: QuantaRedis, prefix: string, n: number, bound: number): Promise<number | undefined> {
  const result = await redis.backlogReserve(keys.backlog(prefix), n, bound);
  return result < 0 ? undefined : result;
}

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
