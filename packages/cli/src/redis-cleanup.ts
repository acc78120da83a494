import { createRedis } from "@quanta/queue";

/** Deletes every key under a prefix (a rush's or a test's private namespace). Bounded by SCAN batches. */
export async function deletePrefix(redisUrl: string, prefix: string): Promise<number> {
  if (!/^[A-Za-z0-9_.-]{3,64}$/.test(prefix)) throw new Error(`refusing to delete keys under prefix ${JSON.stringify(prefix)}`);
  const redis = createRedis(redisUrl, "quanta-cleanup");
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, found] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (found.length > 0) deleted += await redis.unlink(...found);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}
