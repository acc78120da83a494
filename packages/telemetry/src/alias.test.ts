import { describe, expect, it } from "vitest";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { DeprecatedAlias } from "./alias.js";
import { registry, roundSize, workerDecisionLatency, workerDecisions } from "./metrics.js";

/** The sample lines of one metric in Prometheus text, its name replaced by "M" so two can be compared. */
function samples(text: string, name: string): string[] {
  return text
    .split("\n")
    .filter(
      (l) => !l.startsWith("#") && (l.startsWith(`${name}{`) || l.startsWith(`${name} `) || l.startsWith(`${name}_`)),
    )
    .map((l) => `M${l.slice(name.length)}`);
}

function helpOf(text: string, name: string): string | undefined {
  return text.split("\n").find((l) => l.startsWith(`# HELP ${name} `));
}

describe("DeprecatedAlias", () => {
  it("exports each renamed metric of the services under its old name too, with the same values", async () => {
    workerDecisions.inc({ outcome: "granted", reason: "", tier: "A1" }, 3);
    workerDecisions.inc({ outcome: "rejected", reason: "sold_out", tier: "" });
    roundSize.observe(7);
    roundSize.observe(300);
    workerDecisionLatency.observe(0.042);
    const text = await registry.metrics();
    for (const [now, old] of [
      ["quanta_worker_decisions_total", "quanta_decisions_total"],
      ["quanta_worker_round_attempts", "quanta_worker_batch_attempts"],
      ["quanta_worker_decision_latency_seconds", "quanta_decision_latency_seconds"],
    ] as const) {
      expect(samples(text, now).length).toBeGreaterThan(0);
      expect(samples(text, old)).toEqual(samples(text, now));
      expect(helpOf(text, old)).toBe(`# HELP ${old} Deprecated alias of ${now}; removed in the next release.`);
      expect(text).toContain(`# TYPE ${old} ${now.endsWith("_total") ? "counter" : "histogram"}`);
    }
    expect(samples(text, "quanta_decisions_total")).toContain('M{outcome="granted",reason="",tier="A1"} 3');
    expect(samples(text, "quanta_worker_batch_attempts")).toContain("M_count 2");
    expect(samples(text, "quanta_worker_batch_attempts")).toContain("M_sum 307");
  });

  it("follows the metric after every observation and reset, gauges included", async () => {
    const r = new Registry();
    const held = new Gauge({ name: "x_held_fen", help: "h", labelNames: ["a"], registers: [r] });
    new DeprecatedAlias("x_granted_fen", held, [r]);
    held.set({ a: "A1" }, 5000);
    expect(samples(await r.metrics(), "x_granted_fen")).toEqual(['M{a="A1"} 5000']);
    held.reset();
    held.set({ a: "A2" }, 0);
    const text = await r.metrics();
    expect(samples(text, "x_granted_fen")).toEqual(samples(text, "x_held_fen"));
    expect(samples(text, "x_granted_fen")).toEqual(['M{a="A2"} 0']);

    const c = new Counter({ name: "y_total", help: "h", registers: [r] });
    const h = new Histogram({ name: "y_seconds", help: "h", buckets: [1], registers: [r] });
    new DeprecatedAlias("y_old_total", c, [r]);
    new DeprecatedAlias("y_old_seconds", h, [r]);
    c.inc(2);
    h.observe(0.5);
    const after = await r.metrics();
    expect(samples(after, "y_old_total")).toEqual(["M 2"]);
    expect(samples(after, "y_old_seconds")).toEqual(samples(after, "y_seconds"));
    expect(samples(after, "y_old_seconds")).toContain('M_bucket{le="1"} 1');
  });
});
