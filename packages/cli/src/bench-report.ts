import { mkdirSync, writeFileSync } from "node:fs";
import { table } from "@quanta/loadtest";
import type { StepResult, SystemName } from "./bench.js";
import { readLadder } from "./bench-ladder.js";
import { fmt } from "./bench-report-format.js";
import { maximaSection, ratiosSection } from "./bench-report-maxima.js";
import { cpuSection } from "./bench-report-cpu.js";
import { figuresSection } from "./bench-report-figures.js";

/**
 * Turns the steps of a bench run into what a person reads: the maximum
 * sustained rate per system (median over repetitions), the figures at each
 * offered rate (medians), the ratios, the targets, and a chart (bench-chart.ts).
 */
export interface BenchSummary {
  maxSustained: Record<string, { perRep: number[]; median: number }>;
  markdown: string;
}

export function summarize(
  results: readonly StepResult[],
  systems: readonly SystemName[],
  machine: string,
): BenchSummary {
  const ladder = readLadder(results, systems);
  const lines = [
    `Machine: ${machine}. Load generator on the same box. ${ladder.reps.length} repetitions, systems alternating at each rate; medians.`,
    "",
    ...maximaSection(ladder),
    ...ratiosSection(ladder),
    ...cpuSection(ladder),
    ...figuresSection(ladder),
    ...brokenSection(results),
  ];
  return { maxSustained: ladder.maxSustained, markdown: lines.join("\n") };
}

function brokenSection(results: readonly StepResult[]): string[] {
  const broken = results.filter((r) => r.invariantsOk === false);
  if (broken.length === 0) return [];
  return [
    "### Runs that broke an invariant (reported as failed, whatever their speed)",
    ...broken.map((r) => `- ${r.system} ${r.offeredPerS}/s rep ${r.rep}: ${r.invariantProblems.join("; ")}`),
    "",
  ];
}

/** Plain-text version for the terminal. */
export function terminalTable(results: readonly StepResult[]): string {
  return table(
    [
      "system",
      "rep",
      "offered/s",
      "achieved/s",
      "p50 ms",
      "p99 ms",
      "200 %",
      "decided/s",
      "Redis µs",
      "PG commits",
      "sustained",
    ],
    results.map((r) => [
      r.system,
      r.rep,
      r.offeredPerS,
      Math.round(r.achievedPerS),
      fmt(r.ackMs.p50, 1),
      fmt(r.ackMs.p99, 1),
      fmt(100 * r.share200, 1),
      r.decidedPerS === undefined ? "-" : fmt(r.decidedPerS),
      fmt(r.redisCpuUsPerAttempt, 1),
      fmt(r.pgCommitsPerAttempt, 3),
      r.sustained ? "yes" : `no: ${r.why}`,
    ]),
  );
}

export function writeBenchResults(
  results: readonly StepResult[],
  summary: BenchSummary,
  svg: string,
  settings: unknown,
): { json: string; markdown: string; svg: string } {
  const dir = new URL("../../../bench/results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const json = new URL(`bench-${stamp}.json`, dir);
  const markdown = new URL(`bench-${stamp}.md`, dir);
  const chart = new URL(`bench-${stamp}.svg`, dir);
  writeFileSync(json, `${JSON.stringify({ settings, maxSustained: summary.maxSustained, steps: results }, null, 2)}\n`);
  writeFileSync(
    markdown,
    `# quanta bench ${stamp}\n\n${summary.markdown}\n\n![answer p99 vs offered rate](bench-${stamp}.svg)\n`,
  );
  writeFileSync(chart, svg);
  return { json: json.pathname, markdown: markdown.pathname, svg: chart.pathname };
}
