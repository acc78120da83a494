import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { DeprecatedAlias } from "./alias.js";

/**
 * Every metric quanta exports, defined once. Labels are bounded: route,
 * status, outcome, reason, tier and partition; never payer, txn or merchant.
 */
export const registry = new Registry();
// Prefix "quanta_": process_resident_memory_bytes becomes quanta_process_resident_memory_bytes, nodejs_* quanta_nodejs_*.
collectDefaultMetrics({ register: registry, prefix: "quanta_" });
// prom-client names three gauges "..._total", which Prometheus reserves for counters (promtool
// check metrics fails on them); the same counts remain, by type, in their non-_total siblings.
for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
  registry.removeSingleMetric(`quanta_${name}`);
}

// Ack latency at a till: most answers should be tens of ms, the wait bound is seconds.
const ACK_BUCKETS_S = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];
const DB_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

export const httpRequests = new Counter({
  name: "quanta_http_requests_total",
  help: "HTTP requests answered, by route and status code.",
  labelNames: ["route", "status"] as const,
  registers: [registry],
});

export const httpDuration = new Histogram({
  name: "quanta_http_request_duration_seconds",
  help: "Time from request received to answer sent.",
  labelNames: ["route"] as const,
  buckets: ACK_BUCKETS_S,
  registers: [registry],
});

export const refundsAnswered = new Counter({
  name: "quanta_refunds_answered_total",
  help: "Refund callbacks answered, by outcome (voucher_returned, voucher_kept, no_voucher, error) and reason or error code.",
  labelNames: ["outcome", "reason"] as const,
  registers: [registry],
});

export const callbacksUnanswered = new Counter({
  name: "quanta_callbacks_unanswered_total",
  help: "Callbacks closed without an answer because a write that may have landed could not be confirmed within QUANTA_OUTCOME_SETTLE_MS (the acquirer resends), by route (payment, refund).",
  labelNames: ["route"] as const,
  registers: [registry],
});

export const writesSettling = new Counter({
  name: "quanta_writes_settling_total",
  help: "Writes that failed in a way that may have committed and were retried to learn their outcome before answering, by what was written (immediate, refund, job).",
  labelNames: ["write"] as const,
  registers: [registry],
});

export const attemptsAnswered = new Counter({
  name: "quanta_attempts_answered_total",
  help: "Payment callbacks answered, by outcome (granted, rejected, pending, error) and reason or error code.",
  labelNames: ["outcome", "reason"] as const,
  registers: [registry],
});

export const intakeJobs = new Counter({
  name: "quanta_intake_jobs_total",
  help: "Queue jobs added by the ingress (each carries a batch of attempts).",
  registers: [registry],
});

export const intakeJobsUnreplicated = new Counter({
  name: "quanta_intake_jobs_unreplicated_total",
  help: "Queue jobs a Redis Cluster master acknowledged that no replica confirmed within QUANTA_REDIS_WAIT_TIMEOUT_MS (durable on the master's AOF only), by why.",
  labelNames: ["why"] as const,
  registers: [registry],
});

export const intakeAttempts = new Counter({
  name: "quanta_intake_attempts_total",
  help: "Attempts queued by the ingress.",
  registers: [registry],
});

export const intakeBatchSize = new Histogram({
  name: "quanta_intake_batch_attempts",
  help: "Attempts per intake batch (one Redis admission script, at most one job per partition).",
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  registers: [registry],
});

export const immediateBatchSize = new Histogram({
  name: "quanta_ingress_immediate_batch_attempts",
  help: "Decisions the ingress made itself (no stock needed) stored per Postgres statement.",
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  registers: [registry],
});

export const workerDecisions = new Counter({
  name: "quanta_worker_decisions_total",
  help: "Decisions committed by workers' rounds (attempts that needed stock; an ingress's own decisions are in quanta_ingress_immediate_batch_attempts), by outcome, reason and tier (tier empty for rejections without one).",
  labelNames: ["outcome", "reason", "tier"] as const,
  registers: [registry],
});

export const poisonedAttempts = new Counter({
  name: "quanta_worker_poisoned_attempts_total",
  help: "Records in queue jobs that are not decidable attempts (set aside and logged; the rest of the job is decided).",
  registers: [registry],
});

export const requeuedJobs = new Counter({
  name: "quanta_worker_requeued_jobs_total",
  help: "Failed queue jobs (stalled past the limit, or out of retries) put back in the queue by their partition's owner.",
  registers: [registry],
});

export const backlogResets = new Counter({
  name: "quanta_backlog_resets_total",
  help: "Times a worker found every queue idle and the backlog counter not 0, and set it to 0 (room a crash or a lost release left taken).",
  registers: [registry],
});

export const roundSize = new Histogram({
  name: "quanta_worker_round_attempts",
  help: "Attempts a worker took into one round (one transaction over its partitions, and one more after a refill).",
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
  registers: [registry],
});

export const txnDuration = new Histogram({
  name: "quanta_pg_transaction_duration_seconds",
  help: "Duration of worker Postgres transactions, by kind (batch: a round's, refill).",
  labelNames: ["kind"] as const,
  buckets: DB_BUCKETS_S,
  registers: [registry],
});

export const txnRetries = new Counter({
  name: "quanta_pg_retries_total",
  help: "Transient Postgres errors retried, by SQLSTATE or error class.",
  labelNames: ["code"] as const,
  registers: [registry],
});

export const refills = new Counter({
  name: "quanta_stock_refills_total",
  help: "Share refills, by result (pool, swept, empty).",
  labelNames: ["result"] as const,
  registers: [registry],
});

export const partitionsOwned = new Gauge({
  name: "quanta_partitions_owned",
  help: "Partitions this worker process currently owns.",
  registers: [registry],
});

export const partitionChanges = new Counter({
  name: "quanta_partition_ownership_changes_total",
  help: "Partitions acquired, released or lost by this worker.",
  labelNames: ["change"] as const,
  registers: [registry],
});

export const workerDecisionLatency = new Histogram({
  name: "quanta_worker_decision_latency_seconds",
  help: "Time from callback received by the ingress to its decision committed by a worker's round (attempts that needed stock).",
  buckets: ACK_BUCKETS_S,
  registers: [registry],
});

// Former names, exported for one release (docs/decisions/0017): they said "decisions" and
// "batch" of what are the workers' decisions and rounds.
new DeprecatedAlias("quanta_decisions_total", workerDecisions, [registry]);
new DeprecatedAlias("quanta_decision_latency_seconds", workerDecisionLatency, [registry]);
new DeprecatedAlias("quanta_worker_batch_attempts", roundSize, [registry]);

/** The pool a service's gauges read (set once by watchPgPool). */
interface PoolCounts {
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
}
let watchedPool: { pool: PoolCounts; max: number } | undefined;

export const pgPoolConnections = new Gauge({
  name: "quanta_pg_pool_connections",
  help: "Postgres pool of this process: connections open (total), idle, and queries waiting for one (waiting).",
  labelNames: ["state"] as const,
  registers: [registry],
  collect() {
    if (!watchedPool) return;
    this.set({ state: "total" }, watchedPool.pool.totalCount);
    this.set({ state: "idle" }, watchedPool.pool.idleCount);
    this.set({ state: "waiting" }, watchedPool.pool.waitingCount);
  },
});

export const pgPoolMax = new Gauge({
  name: "quanta_pg_pool_max_connections",
  help: "The pool's bound (QUANTA_PG_POOL_MAX).",
  registers: [registry],
  collect() {
    if (watchedPool) this.set(watchedPool.max);
  },
});

/** Exports the pool's saturation (read at scrape time). */
export function watchPgPool(pool: PoolCounts, max: number): void {
  watchedPool = { pool, max };
}
