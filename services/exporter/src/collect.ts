import { sql, type Kysely } from "kysely";
import { Gauge, Registry } from "prom-client";
import type { Database } from "@quanta/db";
import { readBacklog, type QuantaRedis } from "@quanta/queue";

/**
 * System-wide gauges no single process owns, read when Prometheus scrapes.
 * Cost per scrape is bounded: one query over the tier rows (a handful per
 * campaign, plus an index-only count of grants per tier) and one Redis GET.
 * Labels: campaign, activity, tier - never payer, txn or merchant.
 */
export interface Exporter {
  registry: Registry;
  /** Collects, then renders the Prometheus text. */
  scrape(): Promise<string>;
}

export function createExporter(db: Kysely<Database>, redis: QuantaRedis, prefix: string): Exporter {
  const registry = new Registry();
  const remaining = new Gauge({ name: "quanta_tier_remaining", help: "Vouchers not yet granted (pool + every partition's share).", labelNames: ["campaign", "activity", "tier"], registers: [registry] });
  const granted = new Gauge({ name: "quanta_tier_granted", help: "Vouchers granted.", labelNames: ["campaign", "activity", "tier"], registers: [registry] });
  const quota = new Gauge({ name: "quanta_tier_quota", help: "Vouchers in the campaign plan.", labelNames: ["campaign", "activity", "tier"], registers: [registry] });
  const conservation = new Gauge({
    name: "quanta_tier_conservation_error",
    help: "granted + remaining - quota; anything but 0 is a broken invariant (I1).",
    labelNames: ["campaign", "activity", "tier"],
    registers: [registry],
  });
  const soldOut = new Gauge({ name: "quanta_tier_sold_out_timestamp_seconds", help: "When the tier was seen empty everywhere (absent until then).", labelNames: ["campaign", "activity", "tier"], registers: [registry] });
  const spent = new Gauge({ name: "quanta_activity_discount_granted_fen", help: "Discounts granted, in fen.", labelNames: ["campaign", "activity"], registers: [registry] });
  const budget = new Gauge({ name: "quanta_campaign_budget_fen", help: "The campaign's budget, in fen.", labelNames: ["campaign"], registers: [registry] });
  const backlog = new Gauge({ name: "quanta_backlog_attempts", help: "Attempts queued and not yet decided (all partitions).", registers: [registry] });
  const up = new Gauge({ name: "quanta_exporter_collect_success", help: "1 when the last collection read Postgres and Redis.", registers: [registry] });

  const duration = new Gauge({ name: "quanta_exporter_collect_duration_seconds", help: "Time the last collection took.", registers: [registry] });

  async function collect(): Promise<void> {
    const started = performance.now();
    remaining.reset();
    granted.reset();
    quota.reset();
    conservation.reset();
    soldOut.reset();
    spent.reset();
    budget.reset();
    try {
      const rows = await sql<{
        campaign_id: string; activity_id: string; id: string; quota: number; discount_fen: number; budget_fen: number;
        remaining: string; granted: string; sold_out_at: Date | null;
      }>`
        select t.campaign_id, t.activity_id, t.id, t.quota, t.discount_fen, c.budget_fen, t.sold_out_at,
               t.pool + coalesce((select sum(remaining) from tier_shares s where s.campaign_id = t.campaign_id and s.tier_id = t.id), 0) as remaining,
               (select count(*) from attempts a where a.status = 'granted' and a.campaign_id = t.campaign_id and a.tier_id = t.id) as granted
          from tiers t join campaigns c on c.id = t.campaign_id`.execute(db);
      const spentBy = new Map<string, number>();
      for (const r of rows.rows) {
        const labels = { campaign: r.campaign_id, activity: r.activity_id, tier: r.id };
        remaining.set(labels, Number(r.remaining));
        granted.set(labels, Number(r.granted));
        quota.set(labels, r.quota);
        conservation.set(labels, Number(r.granted) + Number(r.remaining) - r.quota);
        if (r.sold_out_at) soldOut.set(labels, new Date(r.sold_out_at).getTime() / 1000);
        const key = `${r.campaign_id}\u0000${r.activity_id}`;
        spentBy.set(key, (spentBy.get(key) ?? 0) + Number(r.granted) * r.discount_fen);
        budget.set({ campaign: r.campaign_id }, r.budget_fen);
      }
      for (const [key, fen] of spentBy) {
        const [campaign, activity] = key.split("\u0000") as [string, string];
        spent.set({ campaign, activity }, fen);
      }
      backlog.set(await readBacklog(redis, prefix));
      up.set(1);
    } catch {
      up.set(0);
    }
    duration.set((performance.now() - started) / 1000);
  }

  return {
    registry,
    scrape: async () => {
      await collect();
      return registry.metrics();
    },
  };
}
