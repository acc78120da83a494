import type { JobsOptions } from "bullmq";

/**
 * Every BullMQ option quanta relies on, in one place. Jobs are retried far
 * past any transient fault (a failed job still owes its attempts a decision);
 * completed jobs are kept only briefly so Redis memory stays bounded.
 */
export function jobOptions(retentionS: number): JobsOptions {
  return {
    attempts: 50,
    backoff: { type: "exponential", delay: 200 },
    removeOnComplete: { age: retentionS, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  };
}

export const WORKER_LOCK_DURATION_MS = 10_000;
export const WORKER_STALLED_INTERVAL_MS = 3_000;
export const WORKER_MAX_STALLED_COUNT = 10;
