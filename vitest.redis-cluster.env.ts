import { inject } from "vitest";

// Every file of the "redis-cluster" project talks to the cluster its global setup started.
process.env.REDIS_URL = inject("redisClusterUrl");
