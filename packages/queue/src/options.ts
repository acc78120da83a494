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
    // Decisions live in Postgres; a completed job has nothing left to say (0, the default, removes it at once).
    removeOnComplete: retentionS > 0 ? { age: retentionS, count: 10_000 } : true,
    removeOnFail: { age: 7 * 86_400 },
  };
}

export const WORKER_LOCK_DURATION_MS = 10_000;
export const WORKER_STALLED_INTERVAL_MS = 3_000;

/**
 * BullMQ records every job state change in an events stream; quanta reads
 * none of it (decisions go out by pub/sub, state lives in Postgres), so the
 * stream is kept short: trimming a short stream is cheap, a 10,000-entry one
 * is not. Every Queue quanta makes passes it (docs/decisions/0015).
 */
export const QUEUE_STREAMS = { events: { maxLen: 100 } };
