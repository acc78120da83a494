import type { StepResult, SystemName } from "./bench.js";
import type { Ladder } from "./bench-ladder.js";
import { cpuTotalUs, fmt, md, median } from "./bench-report-format.js";

/**
 * The report's table of figures at each offered rate: one row per system and rung it reached, each
 * cell the median over the repetitions that reached it. The floor decides nothing, so its decision
 * columns are "-".
 */

/** What a cell is computed from: the system, the rung and the steps of it there. */
interface Cell {
  system: SystemName;
  rate: number;
  steps: readonly StepResult[];
  /** The median of a figure over the steps (a figure a step lacks is skipped). */
  m: (f: Figure) => number;
}

type Figure = (r: StepResult) => number | null | undefined;

/** The medians of figures, each with `digits` decimals, joined by " / ". */
const figures =
  (digits: number, ...fs: Figure[]) =>
  (c: Cell): string =>
    fs.map((f) => fmt(c.m(f), digits)).join(" / ");

const unlessFloor =
  (cell: (c: Cell) => string) =>
  (c: Cell): string =>
    c.system === "floor" ? "-" : cell(c);

const mib = (bytes: number) => bytes / 2 ** 20;

const COLUMNS: readonly [string, (c: Cell) => string][] = [
  ["system", (c) => c.system],
  ["offered/s", (c) => fmt(c.rate)],
  ["achieved/s", figures(0, (r) => r.achievedPerS)],
  ["ack p50 ms", figures(1, (r) => r.ackMs.p50)],
  ["ack p99 ms", figures(1, (r) => r.ackMs.p99)],
  ["ack p99.9 ms", figures(1, (r) => r.ackMs.p999)],
  ["200 / 202 %", (c) => `${fmt(100 * c.m((r) => r.share200), 1)} / ${fmt(100 * c.m((r) => r.share202), 1)}`],
  [
    "decision p50 / p99 ms",
    unlessFloor(
      figures(
        1,
        (r) => r.decisionMs?.p50,
        (r) => r.decisionMs?.p99,
      ),
    ),
  ],
  ["decided/s", unlessFloor(figures(0, (r) => r.decidedPerS))],
  ["all granted s", unlessFloor(figures(1, (r) => r.allGrantedS))],
  ["inversion ms", unlessFloor(figures(0, (r) => r.inversionMs))],
  ["Redis µs/att", figures(1, (r) => r.redisCpuUsPerAttempt)],
  ["Redis cmds/att", figures(1, (r) => r.redisCommandsPerAttempt)],
  ["PG commits/att", figures(3, (r) => r.pgCommitsPerAttempt)],
  ["WAL B/att", figures(0, (r) => r.walBytesPerAttempt)],
  ["CPU µs/att (all)", figures(0, (r) => (r.cpuUsPerAttempt ? cpuTotalUs(r.cpuUsPerAttempt) : Number.NaN))],
  ["peak RSS MiB", figures(0, (r) => Math.max(...Object.values(r.rssPeakMiB)))],
  [
    "Redis MiB before/peak/after",
    figures(
      1,
      (r) => mib(r.redisMemory.beforeBytes),
      (r) => mib(r.redisMemory.peakBytes),
      (r) => mib(r.redisMemory.afterBytes),
    ),
  ],
  ["sustained", (c) => (c.steps.every((r) => r.sustained) ? "yes" : c.steps.some((r) => r.sustained) ? "some" : "no")],
  [
    "I1–I6, deadlocks",
    (c) =>
      c.steps.some((r) => r.invariantsOk === false)
        ? "BROKEN"
        : c.steps.every((r) => r.invariantsOk === null)
          ? "-"
          : "hold",
  ],
];

export function figuresSection(l: Ladder): string[] {
  const rows: string[][] = [];
  for (const system of l.systems) {
    for (const rate of l.rates) {
      const steps = l.at(system, rate);
      if (steps.length === 0) continue;
      const m = (f: Figure) => median(steps.map((r) => f(r) ?? Number.NaN));
      const cell: Cell = { system, rate, steps, m };
      rows.push(COLUMNS.map(([, value]) => value(cell)));
    }
  }
  return [
    "### Figures at each offered rate (medians over the repetitions that reached it)",
    "",
    md(
      COLUMNS.map(([header]) => header),
      rows,
    ),
    "",
  ];
}
