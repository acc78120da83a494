import { Gauge, type Registry } from "prom-client";
import { DeprecatedAlias } from "./alias.js";

/**
 * The system-wide gauges that no single process owns: stock per tier, budgets, pauses, queue
 * depth, partition owners, Redis memory. Only the exporter registers them (on a registry of its
 * own, filled at each scrape), so they are made by a function rather than at import like the
 * per-process metrics in metrics.ts. Labels: campaign, activity, tier, partition, state.
 */
export type SystemGauges = ReturnType<typeof createSystemGauges>;

export function createSystemGauges(registry: Registry) {
  const remaining = new Gauge({
    name: "quanta_tier_remaining",
    help: "Vouchers not yet granted (pool + every partition's share).",
    labelNames: ["campaign", "activity", "tier"],
    registers: [registry],
  });
  const granted = new Gauge({
    name: "quanta_tier_granted",
    help: "Vouchers granted (ever, including those a refund returned later).",
    labelNames: ["campaign", "activity", "tier"],
    registers: [registry],
  });
  const returned = new Gauge({
    name: "quanta_tier_returned",
    help: "Granted vouchers that a refund returned to the stock.",
    labelNames: ["campaign", "activity", "tier"],
    registers: [registry],
  });
  const quota = new Gauge({
    name: "quanta_tier_quota",
    help: "Vouchers in the campaign plan.",
    labelNames: ["campaign", "activity", "tier"],
    registers: [registry],
  });
  const conservation = new Gauge({
    name: "quanta_tier_conservation_error",
    help: "held (granted - returned) + remaining - quota; anything but 0 is a broken invariant (I1).",
    labelNames: ["campaign", "activity", "tier"],
    registers: [registry],
  });
  const soldOut = new Gauge({
    name: "quanta_tier_sold_out_timestamp_seconds",
    help: "When the tier was seen empty everywhere (absent until then).",
    labelNames: ["campaign", "activity", "tier"],
    registers: [registry],
  });
  const spent = new Gauge({
    name: "quanta_activity_discount_held_fen",
    help: "Discounts of the vouchers held (granted, less those a refund returned), in fen: what the activity spends of its campaign's budget.",
    labelNames: ["campaign", "activity"],
    registers: [registry],
  });
  // Its former name said "granted", which quanta_tier_granted uses for grants before refunds
  // (docs/decisions/0017).
  new DeprecatedAlias("quanta_activity_discount_granted_fen", spent, [registry]);
  const budget = new Gauge({
    name: "quanta_campaign_budget_fen",
    help: "The campaign's budget, in fen.",
    labelNames: ["campaign"],
    registers: [registry],
  });
  const backlog = new Gauge({
    name: "quanta_backlog_attempts",
    help: "Attempts queued and not yet decided (all partitions).",
    registers: [registry],
  });
  const budgetLeft = new Gauge({
    name: "quanta_campaign_budget_left_fen",
    help: "Budget left of a budget-capped campaign (额满即止), in fen; absent for campaigns whose budget covers every voucher.",
    labelNames: ["campaign"],
    registers: [registry],
  });
  const paused = new Gauge({
    name: "quanta_activity_paused",
    help: "1 while an operator has paused the activity (payments refused activity_paused), else 0.",
    labelNames: ["campaign", "activity"],
    registers: [registry],
  });
  const jobs = new Gauge({
    name: "quanta_queue_jobs",
    help: "Queue jobs (each a batch of attempts) per partition and state: wait, active, delayed, prioritized, failed.",
    labelNames: ["partition", "state"],
    registers: [registry],
  });
  const oldest = new Gauge({
    name: "quanta_backlog_oldest_age_seconds",
    help: "Age of the oldest queued job not yet decided (waiting or active), across partitions; 0 when none.",
    registers: [registry],
  });
  const ownerUp = new Gauge({
    name: "quanta_partition_owner_up",
    help: "1 when a worker holds the partition's lease, 0 when nobody does (its attempts wait).",
    labelNames: ["partition"],
    registers: [registry],
  });
  const redisUsed = new Gauge({
    name: "quanta_redis_memory_used_bytes",
    help: "Redis used_memory.",
    registers: [registry],
  });
  const redisMax = new Gauge({
    name: "quanta_redis_memory_max_bytes",
    help: "Redis maxmemory (0: no limit set).",
    registers: [registry],
  });
  const up = new Gauge({
    name: "quanta_exporter_collect_success",
    help: "1 when the last collection read Postgres and Redis.",
    registers: [registry],
  });

  const duration = new Gauge({
    name: "quanta_exporter_collect_duration_seconds",
    help: "Time the last collection took.",
    registers: [registry],
  });

  return {
    remaining,
    granted,
    returned,
    quota,
    conservation,
    soldOut,
    spent,
    budget,
    backlog,
    budgetLeft,
    paused,
    jobs,
    oldest,
    ownerUp,
    redisUsed,
    redisMax,
    up,
    duration,
  };
}
