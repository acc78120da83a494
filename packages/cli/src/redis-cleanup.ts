import { clusterReady, createRedis, isCluster, type Redis } from "@quanta/queue";

/**
 * Deletes every key under a prefix (a rush's or a test's private namespace). Bounded by SCAN
 * batches; on a cluster every master is scanned, and keys go one UNLINK per key (they span slots).
 */
export async function deletePrefix(redisUrl: string, prefix: string): Promise<number> {
  if (!/^[A-Za-z0-9_.-]{3,64}$/.test(prefix)) throw new Error(`refusing to delete keys under prefix ${JSON.stringify(prefix)}`);
  const redis = createRedis(redisUrl, "quanta-cleanup");
  let deleted = 0;
  try {
    if (isCluster(redis)) await clusterReady(redis, 10_000);
    const nodes: Redis[] = isCluster(redis) ? redis.nodes("master") : [redis];
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, found] = await node.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
        cursor = next;
        const counts = await Promise.all(found.map((k) => node.unlink(k)));
        deleted += counts.reduce((a, b) => a + b, 0);
      } while (cursor !== "0");
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}
