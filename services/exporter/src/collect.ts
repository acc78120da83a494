import { sql, type Kysely } from "kysely";
import { Registry } from "prom-client";
import { createSystemGauges, type SystemGauges } from "@quanta/telemetry";
import type { Database } from "@quanta/db";
import { isCluster, keys, queueName, queuePrefix, type QuantaRedis } from "@quanta/queue";

/**
 * System-wide gauges no single process owns (defined in @quanta/telemetry, system-gauges.ts),
 * read when Prometheus scrapes. Cost per scrape is bounded: one query over the tier rows (a
 * handful per campaign, plus an index-only count of grants per tier), one over the activities,
 * one small query for the partition count, and one Redis pipeline of a few commands per
 * partition (queue lengths, the oldest waiting job, the partition's lease) plus INFO memory.
 * Labels: campaign, activity, tier, partition - never payer, txn or merchant.
 */
export interface Exporter {
  registry: Registry;
  /** Collects, then renders the Prometheus text. */
  scrape(): Promise<string>;
}

export function createExporter(db: Kysely<Database>, redis: QuantaRedis, prefix: string): Exporter {
  const registry = new Registry();
  const g = createSystemGauges(registry);

  async function collect(): Promise<void> {
    const started = performance.now();
    // A tier, activity or partition that is gone must not keep its last value.
    for (const gauge of [
      g.remaining,
      g.granted,
      g.returned,
      g.quota,
      g.conservation,
      g.soldOut,
      g.spent,
      g.budget,
      g.jobs,
      g.ownerUp,
      g.budgetLeft,
      g.paused,
    ])
      gauge.reset();
    try {
      await collectTiers(db, g);
      await collectActivities(db, g);
      const partitions = await partitionCount(db);
      await collectQueues(redis, prefix, partitions, g);
      await collectRedisMemory(redis, g);
      g.up.set(1);
    } catch {
      g.up.set(0);
    }
    g.duration.set((performance.now() - started) / 1000);
  }

  return {
    registry,
    scrape: async () => {
      await collect();
      return registry.metrics();
    },
  };
}

/** Stock per tier (remaining, granted, returned, quota, conservation, sold out), spend per activity, budgets. */
async function collectTiers(db: Kysely<Database>, g: SystemGauges): Promise<void> {
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
    g.remaining.set(labels, Number(r.remaining));
    const held = Number(r.granted) - Number(r.returned);
    g.granted.set(labels, Number(r.granted));
    g.returned.set(labels, Number(r.returned));
    g.quota.set(labels, r.quota);
    g.conservation.set(labels, held + Number(r.remaining) - r.quota);
    if (r.sold_out_at) g.soldOut.set(labels, new Date(r.sold_out_at).getTime() / 1000);
    const key = `${r.campaign_id}\u0000${r.activity_id}`;
    spentBy.set(key, (spentBy.get(key) ?? 0) + held * r.discount_fen);
    g.budget.set({ campaign: r.campaign_id }, r.budget_fen);
    if (r.budget_capped) g.budgetLeft.set({ campaign: r.campaign_id }, Number(r.budget_left_fen));
  }
  for (const [key, fen] of spentBy) {
    const [campaign, activity] = key.split("\u0000") as [string, string];
    g.spent.set({ campaign, activity }, fen);
  }
}

/** Which activities an operator has paused (the emergency stop). */
async function collectActivities(db: Kysely<Database>, g: SystemGauges): Promise<void> {
  const activities = await sql<{ campaign_id: string; id: string; paused: boolean }>`
    select campaign_id, id, paused_at is not null as paused from activities`.execute(db);
  for (const a of activities.rows) g.paused.set({ campaign: a.campaign_id, activity: a.id }, a.paused ? 1 : 0);
}

async function partitionCount(db: Kysely<Database>): Promise<number> {
  const setting = await sql<{ value: string }>`select value from settings where key = 'partition_count'`.execute(db);
  return Number(setting.rows[0]?.value ?? 0);
}

type PartitionReading = [
  wait: number,
  active: number,
  delayed: number,
  prioritized: number,
  failed: number,
  oldestWait: string | null,
  oldestActive: string | null,
  lease: number,
  room: string | null,
];

/** Jobs per partition and state, each partition's owner, the backlog and the age of its oldest job. */
async function collectQueues(redis: QuantaRedis, prefix: string, partitions: number, g: SystemGauges): Promise<void> {
  const perPartition = await Promise.all(Array.from({ length: partitions }, (_, p) => readPartition(redis, prefix, p)));
  const oldestIds: [number, string][] = [];
  let queued = 0;
  perPartition.forEach(([wait, active, delayed, prioritized, failed, oldestWait, oldestActive, lease, room], p) => {
    queued += Math.max(0, Number(room ?? 0));
    const partition = String(p);
    g.jobs.set({ partition, state: "wait" }, wait);
    g.jobs.set({ partition, state: "active" }, active);
    g.jobs.set({ partition, state: "delayed" }, delayed);
    g.jobs.set({ partition, state: "prioritized" }, prioritized);
    g.jobs.set({ partition, state: "failed" }, failed);
    g.ownerUp.set({ partition }, lease === 1 ? 1 : 0);
    for (const id of [oldestWait, oldestActive]) if (id) oldestIds.push([p, id]);
  });
  g.backlog.set(queued);
  let oldestMs = Date.now();
  const stamps = await Promise.all(
    oldestIds.map(([p, id]) =>
      redis.hget(`${queuePrefix(prefix, p)}:${queueName(p)}:${id}`, "timestamp").catch(() => null),
    ),
  );
  for (const value of stamps) if (value) oldestMs = Math.min(oldestMs, Number(value));
  g.oldest.set(Math.max(0, (Date.now() - oldestMs) / 1000));
}

/** One pipeline per partition: its queue, lease and backlog share one slot (one node of a cluster). */
async function readPartition(redis: QuantaRedis, prefix: string, p: number): Promise<PartitionReading> {
  const q = `${queuePrefix(prefix, p)}:${queueName(p)}`;
  const pipeline = redis.pipeline();
  pipeline.llen(`${q}:wait`).llen(`${q}:active`).zcard(`${q}:delayed`).zcard(`${q}:prioritized`).zcard(`${q}:failed`);
  // BullMQ pushes new jobs on the left and takes from the right: the oldest is at index -1.
  pipeline.lindex(`${q}:wait`, -1).lindex(`${q}:active`, -1);
  pipeline.exists(keys.lease(prefix, p));
  pipeline.get(keys.backlog(prefix, p));
  const replies = ((await pipeline.exec()) ?? []).map(([error, value]) => {
    if (error) throw error;
    return value;
  });
  return replies as PartitionReading;
}

/** On a cluster: memory summed over the masters, and the smallest maxmemory among them. */
async function collectRedisMemory(redis: QuantaRedis, g: SystemGauges): Promise<void> {
  const infos = await Promise.all(
    (isCluster(redis) ? redis.nodes("master") : [redis]).map((node) => node.info("memory")),
  );
  g.redisUsed.set(infos.reduce((sum, info) => sum + Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0), 0));
  // maxmemory 0 is "no limit": the smallest limit set, or 0 when no master sets one.
  const limits = infos.map((info) => Number(/maxmemory:(\d+)/.exec(info)?.[1] ?? 0)).filter((n) => n > 0);
  g.redisMax.set(limits.length > 0 ? Math.min(...limits) : 0);
}
