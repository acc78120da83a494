import type { SystemName } from "./bench.js";
import { atTop, type Ladder } from "./bench-ladder.js";
import { fmt, md, median } from "./bench-report-format.js";

/**
 * The report's first two sections: each system's maximum sustained rate, and the ratios between
 * systems (rates, and answer p99 at the highest rung every system reached).
 */
export function maximaSection(l: Ladder): string[] {
  // A system sustained at the ladder's top rung has a maximum above the ladder: say so, and say
  // that a ratio against its median is then an upper bound.
  const heldTop = (s: SystemName) => {
    const n = l.maxSustained[s]!.perRep.filter((r) => r >= l.top).length;
    if (atTop(l, s)) return " (the ladder's top: its maximum is higher)";
    return n > 0 ? ` (${n} of ${l.reps.length} repetitions held the ladder's top)` : "";
  };
  const rows = l.systems.map((s) => [
    s,
    l.maxSustained[s]!.perRep.join(", "),
    `${fmt(l.maxSustained[s]!.median)}${heldTop(s)}`,
  ]);
  return [
    "### Maximum sustained rate (no errors, no dropped arrivals, answer p99 ≤ 100 ms)",
    "",
    md(["system", "per repetition (/s)", "median (/s)"], rows),
    "",
  ];
}

/** Variants of quanta, each compared with quanta itself when the run has it. */
const VARIANTS: readonly [SystemName, string][] = [
  ["quanta-aof", "quanta-aof / quanta (the cost of AOF always)"],
  ["quanta-1w", "quanta-1w / quanta (one worker process instead of two)"],
  [
    "quanta-cluster",
    "quanta-cluster / quanta (Redis Cluster of 3 masters + 3 replicas, AOF always, against one Redis)",
  ],
];

export function ratiosSection(l: Ladder): string[] {
  const q = l.maxSustained.quanta?.median ?? Number.NaN;
  const max = (s: SystemName) => l.maxSustained[s]?.median ?? Number.NaN;
  const bound = (s: SystemName) => (l.systems.includes(s) && atTop(l, s) ? "at most " : "");
  const common = l.rates.filter((rate) => l.systems.every((s) => l.at(s, rate).length > 0)).at(-1);
  const p99At = (s: SystemName) =>
    common === undefined ? Number.NaN : median(l.at(s, common).map((r) => r.ackMs.p99));
  const rows = [
    ["quanta / floor", `${bound("floor")}${fmt(q / max("floor"), 2)}`, fmt(p99At("quanta") / p99At("floor"), 2)],
    ["quanta / direct", `${bound("direct")}${fmt(q / max("direct"), 2)}`, fmt(p99At("quanta") / p99At("direct"), 2)],
    ...VARIANTS.filter(([s]) => l.systems.includes(s)).map(([s, label]) => [
      label,
      fmt(max(s) / q, 2),
      fmt(p99At(s) / p99At("quanta"), 2),
    ]),
  ];
  return ["### Ratios", "", md(["", "max sustained rate", `answer p99 at ${common ?? "-"}/s`], rows), ""];
}
