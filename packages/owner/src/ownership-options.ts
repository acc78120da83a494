import type { Env } from "@quanta/config";
import type { OwnershipOptions } from "./ownership.js";

/** A worker's ownership options from the parsed environment. */
export function ownershipOptionsFromEnv(env: Env, workerId: string): OwnershipOptions {
  return {
    workerId,
    prefix: env.QUANTA_REDIS_PREFIX,
    partitionCount: env.QUANTA_PARTITIONS,
    leaseMs: env.QUANTA_LEASE_MS,
    jobsMax: env.QUANTA_WORKER_JOBS_MAX,
    batchMax: env.QUANTA_ROUND_ATTEMPTS_MAX,
    roundGapMs: env.QUANTA_GROUP_COMMIT_MS,
    maxStalledCount: env.QUANTA_WORKER_MAX_STALLED_COUNT,
    faultStopAfterReadRound: env.QUANTA_FAULT_STOP_AFTER_READ_ROUND,
  };
}
