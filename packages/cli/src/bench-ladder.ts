import type { StepResult, SystemName } from "./bench.js";
import { median } from "./bench-report-format.js";

/**
 * A bench run read as ladders: its repetitions, its rungs (the offered rates, ascending), each
 * system's maximum sustained rate per repetition and their median, and the steps at one rung.
 */
export interface Ladder {
  results: readonly StepResult[];
  systems: readonly SystemName[];
  reps: number[];
  rates: number[];
  /** The ladder's top rung: a system sustained there has a maximum above the ladder. */
  top: number;
  maxSustained: Record<string, { perRep: number[]; median: number }>;
  at(system: SystemName, rate: number): StepResult[];
}

export function readLadder(results: readonly StepResult[], systems: readonly SystemName[]): Ladder {
  const reps = [...new Set(results.map((r) => r.rep))].sort();
  const maxSustained: Ladder["maxSustained"] = {};
  for (const s of systems) {
    const perRep = reps.map((rep) =>
      Math.max(0, ...results.filter((r) => r.system === s && r.rep === rep && r.sustained).map((r) => r.offeredPerS)),
    );
    maxSustained[s] = { perRep, median: median(perRep) };
  }
  const rates = [...new Set(results.map((r) => r.offeredPerS))].sort((a, b) => a - b);
  return {
    results,
    systems,
    reps,
    rates,
    top: Math.max(...rates),
    maxSustained,
    at: (s, rate) => results.filter((r) => r.system === s && r.offeredPerS === rate),
  };
}

/** Whether the system's median maximum is the ladder's top rung (its real maximum is higher). */
export const atTop = (l: Ladder, s: SystemName): boolean => l.maxSustained[s]!.median >= l.top;
