import type { Env } from "@quanta/config";
import type { OwnerRole, OwnershipOptions } from "./ownership.js";

/** An owner's options from the parsed environment: the same limits for an ingress and a worker. */
export function ownershipOptionsFromEnv(env: Env, workerId: string, role: OwnerRole): OwnershipOptions {
  return {
    workerId,
    role,
    prefix: env.QUANTA_REDIS_PREFIX,
    partitionCount: env.QUANTA_PARTITIONS,
    leaseMs: env.QUANTA_LEASE_MS,
    jobsMax: env.QUANTA_WORKER_JOBS_MAX,
    batchMax: env.QUANTA_WORKER_BATCH_MAX,
    roundGapMs: env.QUANTA_GROUP_COMMIT_MS,
    maxStalledCount: env.QUANTA_WORKER_MAX_STALLED_COUNT,
  };
}
