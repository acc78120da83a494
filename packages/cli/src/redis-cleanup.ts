import { createRedis, keysMatching } from "@quanta/queue";

/**
 * Deletes every key under a prefix (a rush's or a test's private namespace): SCAN of every master
 * (keysMatching), then one UNLINK per key (on a cluster the keys span slots).
 */
export async function deletePrefix(redisUrl: string, prefix: string): Promise<number> {
  if (!/^[A-Za-z0-9_.-]{3,64}$/.test(prefix))
    throw new Error(`refusing to delete keys under prefix ${JSON.stringify(prefix)}`);
  const redis = createRedis(redisUrl, "quanta-cleanup");
  try {
    const found = await keysMatching(redis, `${prefix}:*`);
    const counts = await Promise.all(found.map((k) => redis.unlink(k)));
    return counts.reduce((a, b) => a + b, 0);
  } finally {
    redis.disconnect();
  }
}
