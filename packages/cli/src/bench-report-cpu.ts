import { availableParallelism } from "node:os";
import type { StepResult, SystemName } from "./bench.js";
import type { Ladder } from "./bench-ladder.js";
import { cpuTotalUs, fmt, md, median } from "./bench-report-format.js";

/**
 * What one attempt costs the whole box at each system's own maximum sustained rate: on a machine
 * shared with the database, Redis and the load generator, the sum bounds the rate at which every
 * core would be busy (per-attempt costs fall as batches grow, so the bound is for that rate).
 */
export function cpuSection(l: Ladder): string[] {
  const cores = availableParallelism();
  const rows = l.systems.map((s) => cpuRow(l, s, cores)).filter((r) => r !== undefined);
  if (rows.length === 0) return [];
  const header = [
    "system",
    "at /s",
    "its processes",
    "Postgres",
    "Redis",
    "load generator",
    "total",
    `${cores} cores at this cost`,
  ];
  return [
    `### Where the CPU goes (µs of CPU per attempt at each system's maximum sustained rate, medians; ${cores} cores)`,
    "",
    md(header, rows),
    "",
  ];
}

function cpuRow(l: Ladder, s: SystemName, cores: number): string[] | undefined {
  // The median of an even number of repetitions can fall between two rungs: the rung below it.
  const rate = Math.max(0, ...l.rates.filter((r) => r <= l.maxSustained[s]!.median));
  const xs = l.at(s, rate);
  if (xs.length === 0) return undefined;
  const c = (f: (u: StepResult["cpuUsPerAttempt"]) => number) =>
    median(xs.map((r) => (r.cpuUsPerAttempt ? f(r.cpuUsPerAttempt) : Number.NaN)));
  const total = c(cpuTotalUs);
  const byProcess = processShares(xs);
  return [
    s,
    fmt(rate),
    `${fmt(c((u) => u.services))}${byProcess ? ` (${byProcess})` : ""}`,
    fmt(c((u) => u.postgres)),
    fmt(c((u) => u.redis)),
    fmt(c((u) => u.driver)),
    fmt(total),
    `${fmt((cores * 1e6) / total)}/s`,
  ];
}

/** Which of the system's processes its share is (results written before this was measured have none). */
function processShares(xs: readonly StepResult[]): string {
  const names = [...new Set(xs.flatMap((r) => Object.keys(r.cpuUsPerAttemptByProcess ?? {})))];
  if (names.length < 2) return "";
  return names
    .map((n) => `${n} ${fmt(median(xs.map((r) => r.cpuUsPerAttemptByProcess?.[n] ?? Number.NaN)))}`)
    .join(", ");
}
