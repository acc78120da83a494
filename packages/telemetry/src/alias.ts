import type { MetricObjectWithValues, MetricValue, Registry } from "prom-client";

/** What an alias reads from its metric: prom-client's counters, gauges and histograms all have it. */
interface Readable {
  get(): Promise<MetricObjectWithValues<MetricValue<string>>>;
}

/**
 * A metric's former name, exported for one release so that dashboards and alerts outside this
 * repository keep working while they move (docs/decisions/0017). It holds nothing of its own: each
 * scrape renders the metric's current values under the old name, so both always carry the same
 * observations. Series names are rewritten too (a histogram's `_bucket`, `_sum`, `_count`).
 */
export class DeprecatedAlias {
  readonly type: string;

  constructor(
    readonly name: string,
    private readonly metric: Readable,
    registers: readonly Registry[],
  ) {
    this.type = (metric as { type?: string }).type ?? "untyped";
    // Registry.registerMetric only needs what the registry reads: name, type, get() and reset().
    for (const r of registers) r.registerMetric(this as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    const current = await this.metric.get();
    const from = current.name;
    return {
      ...current,
      name: this.name,
      help: `Deprecated alias of ${from}; removed in the next release.`,
      values: current.values.map((v) => {
        const series = (v as { metricName?: string }).metricName;
        return series?.startsWith(from) ? { ...v, metricName: this.name + series.slice(from.length) } : v;
      }),
    };
  }

  /** The metric's own reset is the alias's. */
  reset(): void {}
}
