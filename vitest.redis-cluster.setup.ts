import type { TestProject } from "vitest/node";
import { PrivateRedisCluster } from "@quanta/cli";

// Global setup of the "redis-cluster" project: one Redis Cluster (3 masters, one replica each,
// AOF always) for its files, stopped when they are done. Each file still uses its own prefix.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await PrivateRedisCluster.start();
  project.provide("redisClusterUrl", cluster.url);
  return () => cluster.stop();
}

declare module "vitest" {
  export interface ProvidedContext {
    redisClusterUrl: string;
  }
}
