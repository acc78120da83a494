import type { QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

// Room is reserved per partition by backlog-reserve.lua (after the batch's txns are registered).
export async function releaseBacklog(redis: QuantaRedis, prefix: string, partition: number, n: number): Promise<void> {
  await redis.decrby(keys.backlog(prefix, partition), n);
}

/** Attempts queued and not yet decided, per partition (a counter that drifted below 0 reads 0). */
export async function readBacklogs(redis: QuantaRedis, prefix: string, partitionCount: number): Promise<number[]> {
  const values = await Promise.all(
    Array.from({ length: partitionCount }, (_, p) => redis.get(keys.backlog(prefix, p))),
  );
  return values.map((v) => Math.max(0, Number(v ?? 0)));
}

export async function readBacklog(redis: QuantaRedis, prefix: string, partitionCount: number): Promise<number> {
  return (await readBacklogs(redis, prefix, partitionCount)).reduce((a, b) => a + b, 0);
}

/** Zeroes the counters of idle partitions that drifted; returns how many it corrected. */
export async function resetBacklogIfIdle(redis: QuantaRedis, prefix: string, partitionCount: number): Promise<number> {
  const corrected = await Promise.all(
    Array.from({ length: partitionCount }, (_, p) =>
      redis.backlogReset(
        "5",
        keys.backlog(prefix, p),
        keys.bull(prefix, p, "wait"),
        keys.bull(prefix, p, "active"),
        keys.bull(prefix, p, "delayed"),
        keys.bull(prefix, p, "prioritized"),
      ),
    ),
  );
  return corrected.filter((c) => Number(c) === 1).length;
}

/** The per-partition bound that keeps the total under QUANTA_BACKLOG_MAX. */
export function backlogMaxPerPartition(backlogMax: number, partitionCount: number): number {
  return Math.max(1, Math.floor(backlogMax / partitionCount));
}
