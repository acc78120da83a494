import { sql, type Kysely } from "kysely";
import { Gauge, Registry } from "prom-client";
import { DeprecatedAlias } from "@quanta/telemetry";
import type { Database } from "@quanta/db";
import { isCluster, keys, queueName, queuePrefix, type QuantaRedis } from "@quanta/queue";

/**
 * System-wide gauges no single process owns, read when Prometheus scrapes.
 * Cost per scrape is bounded: one query over the tier rows (a handful per
 * campaign, plus an index-only count of grants per tier), one small query
 * for the partition count, and one Redis pipeline of a few commands per
 * partition (queue lengths, the oldest waiting job, the partition's lease)
 * plus INFO memory.
 * Labels: campaign, activity, tier - never payer, txn or merchant.
 */
export interface Exporter {
  registry: Registry;
  /** Collects, then renders the Prometheus text. */
  scrape(): Promise<string>;
}

export function createExporter(db: Kysely<Database>, redis: QuantaRedis, prefix: string): Exporter {
  const registry = new Registry();
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

  async function collect(): Promise<void> {
    const started = performance.now();
    remaining.reset();
    granted.reset();
    quota.reset();
    conservation.reset();
    soldOut.reset();
    spent.reset();
    budget.reset();
    jobs.reset();
    ownerUp.reset();
    budgetLeft.reset();
    paused.reset();
    try {
      const rows = await sql<{
        campaign_id: string;
        activity_id: string;
        id: string;
        quota: number;
        discount_fen: number;
        budget_fen: number;
        budget_capped: boolean;
        budget_left_fen: string;
        remaining: string;
        granted: string;
        returned: string;
        sold_out_at: Date | null;
      }>`
        select t.campaign_id, t.activity_id, t.id, t.quota, t.discount_fen, c.budget_fen, c.budget_capped, c.budget_left_fen, t.sold_out_at,
               t.pool + coalesce((select sum(remaining) from tier_shares s where s.campaign_id = t.campaign_id and s.tier_id = t.id), 0) as remaining,
               g.granted, g.returned
          from tiers t
          cross join lateral (select count(*) as granted, count(a.voucher_returned_at) as returned from attempts a
                               where a.status = 'granted' and a.campaign_id = t.campaign_id and a.tier_id = t.id) g join campaigns c on c.id = t.campaign_id`.execute(
        db,
      );
      const spentBy = new Map<string, number>();
      for (const r of rows.rows) {
        const labels = { campaign: r.campaign_id, activity: r.activity_id, tier: r.id };
        remaining.set(labels, Number(r.remaining));
        const held = Number(r.granted) - Number(r.returned);
        granted.set(labels, Number(r.granted));
        returned.set(labels, Number(r.returned));
        quota.set(labels, r.quota);
        conservation.set(labels, held + Number(r.remaining) - r.quota);
        if (r.sold_out_at) soldOut.set(labels, new Date(r.sold_out_at).getTime() / 1000);
        const key = `${r.campaign_id}\u0000${r.activity_id}`;
        spentBy.set(key, (spentBy.get(key) ?? 0) + held * r.discount_fen);
        budget.set({ campaign: r.campaign_id }, r.budget_fen);
        if (r.budget_capped) budgetLeft.set({ campaign: r.campaign_id }, Number(r.budget_left_fen));
      }
      for (const [key, fen] of spentBy) {
        const [campaign, activity] = key.split("\u0000") as [string, string];
        spent.set({ campaign, activity }, fen);
      }
      const activities = await sql<{ campaign_id: string; id: string; paused: boolean }>`
        select campaign_id, id, paused_at is not null as paused from activities`.execute(db);
      for (const a of activities.rows) paused.set({ campaign: a.campaign_id, activity: a.id }, a.paused ? 1 : 0);
      await collectQueues();
      up.set(1);
    } catch {
      up.set(0);
    }
    duration.set((performance.now() - started) / 1000);
  }

  async function collectQueues(): Promise<void> {
    const setting = await sql<{ value: string }>`select value from settings where key = 'partition_count'`.execute(db);
    const partitions = Number(setting.rows[0]?.value ?? 0);
    // One pipeline per partition: its queue, lease and backlog share one slot (one node of a cluster).
    const perPartition = await Promise.all(
      Array.from({ length: partitions }, async (_, p) => {
        const q = `${queuePrefix(prefix, p)}:${queueName(p)}`;
        const pipeline = redis.pipeline();
        pipeline
          .llen(`${q}:wait`)
          .llen(`${q}:active`)
          .zcard(`${q}:delayed`)
          .zcard(`${q}:prioritized`)
          .zcard(`${q}:failed`);
        // BullMQ pushes new jobs on the left and takes from the right: the oldest is at index -1.
        pipeline.lindex(`${q}:wait`, -1).lindex(`${q}:active`, -1);
        pipeline.exists(keys.lease(prefix, p));
        pipeline.get(keys.backlog(prefix, p));
        return ((await pipeline.exec()) ?? []).map(([error, value]) => {
          if (error) throw error;
          return value;
        });
      }),
    );
    const oldestIds: [number, string][] = [];
    let queued = 0;
    for (let p = 0; p < partitions; p++) {
      const [wait, active, delayed, prioritized, failed, oldestWait, oldestActive, lease, room] = perPartition[p] as [
        number,
        number,
        number,
        number,
        number,
        string | null,
        string | null,
        number,
        string | null,
      ];
      queued += Math.max(0, Number(room ?? 0));
      const partition = String(p);
      jobs.set({ partition, state: "wait" }, wait);
      jobs.set({ partition, state: "active" }, active);
      jobs.set({ partition, state: "delayed" }, delayed);
      jobs.set({ partition, state: "prioritized" }, prioritized);
      jobs.set({ partition, state: "failed" }, failed);
      ownerUp.set({ partition }, lease === 1 ? 1 : 0);
      for (const id of [oldestWait, oldestActive]) if (id) oldestIds.push([p, id]);
    }
    backlog.set(queued);
    // On a cluster: memory summed over the masters, and the smallest maxmemory among them.
    const infos = await Promise.all(
      (isCluster(redis) ? redis.nodes("master") : [redis]).map((node) => node.info("memory")),
    );
    redisUsed.set(infos.reduce((sum, info) => sum + Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0), 0));
    // maxmemory 0 is "no limit": the smallest limit set, or 0 when no master sets one.
    const limits = infos.map((info) => Number(/maxmemory:(\d+)/.exec(info)?.[1] ?? 0)).filter((n) => n > 0);
    redisMax.set(limits.length > 0 ? Math.min(...limits) : 0);
    let oldestMs = Date.now();
    const stamps = await Promise.all(
      oldestIds.map(([p, id]) =>
        redis.hget(`${queuePrefix(prefix, p)}:${queueName(p)}:${id}`, "timestamp").catch(() => null),
      ),
    );
    for (const value of stamps) if (value) oldestMs = Math.min(oldestMs, Number(value));
    oldest.set(Math.max(0, (Date.now() - oldestMs) / 1000));
  }

  return {
    registry,
    scrape: async () => {
      await collect();
      return registry.metrics();
    },
  };
}
