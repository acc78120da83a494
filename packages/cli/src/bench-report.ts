import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { table } from "@quanta/loadtest";
import type { StepResult, SystemName } from "./bench.js";

/**
 * Turns the steps of a bench run into what a person reads: the maximum
 * sustained rate per system (median over repetitions), the figures at each
 * offered rate (medians), the ratios, the targets, and a chart.
 */
const median = (xs: readonly number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
};
const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || !Number.isFinite(n)
    ? "-"
    : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** CPU per attempt of every process group together (results written before it was measured have none). */
const cpuTotalUs = (u: StepResult["cpuUsPerAttempt"]): number => u.services + u.postgres + u.redis + u.driver;

export interface BenchSummary {
  maxSustained: Record<string, { perRep: number[]; median: number }>;
  markdown: string;
}

export function summarize(
  results: readonly StepResult[],
  systems: readonly SystemName[],
  machine: string,
): BenchSummary {
  const reps = [...new Set(results.map((r) => r.rep))].sort();
  const maxSustained: BenchSummary["maxSustained"] = {};
  for (const s of systems) {
    const perRep = reps.map((rep) =>
      Math.max(0, ...results.filter((r) => r.system === s && r.rep === rep && r.sustained).map((r) => r.offeredPerS)),
    );
    maxSustained[s] = { perRep, median: median(perRep) };
  }
  const at = (s: SystemName, rate: number) => results.filter((r) => r.system === s && r.offeredPerS === rate);
  const rates = [...new Set(results.map((r) => r.offeredPerS))].sort((a, b) => a - b);
  const lines: string[] = [];
  lines.push(
    `Machine: ${machine}. Load generator on the same box. ${reps.length} repetitions, systems alternating at each rate; medians.`,
  );
  lines.push("");
  lines.push("### Maximum sustained rate (no errors, no dropped arrivals, answer p99 ≤ 100 ms)");
  lines.push("");
  // A system sustained at the ladder's top rung has a maximum above the ladder: say so, and say
  // that a ratio against its median is then an upper bound.
  const top = Math.max(...rates);
  const atTop = (s: SystemName) => maxSustained[s]!.median >= top;
  const heldTop = (s: SystemName) => {
    const n = maxSustained[s]!.perRep.filter((r) => r >= top).length;
    if (atTop(s)) return " (the ladder's top: its maximum is higher)";
    return n > 0 ? ` (${n} of ${reps.length} repetitions held the ladder's top)` : "";
  };
  lines.push(
    md(
      ["system", "per repetition (/s)", "median (/s)"],
      systems.map((s) => [s, maxSustained[s]!.perRep.join(", "), `${fmt(maxSustained[s]!.median)}${heldTop(s)}`]),
    ),
  );
  lines.push("");
  const q = maxSustained.quanta?.median ?? Number.NaN;
  const bound = (s: SystemName) => (systems.includes(s) && atTop(s) ? "at most " : "");
  const common = rates.filter((rate) => systems.every((s) => at(s, rate).length > 0)).at(-1);
  const p99At = (s: SystemName) => (common === undefined ? Number.NaN : median(at(s, common).map((r) => r.ackMs.p99)));
  lines.push("### Ratios");
  lines.push("");
  lines.push(
    md(
      ["", "max sustained rate", `answer p99 at ${common ?? "-"}/s`],
      [
        [
          "quanta / floor",
          `${bound("floor")}${fmt(q / (maxSustained.floor?.median ?? Number.NaN), 2)}`,
          fmt(p99At("quanta") / p99At("floor"), 2),
        ],
        [
          "quanta / direct",
          `${bound("direct")}${fmt(q / (maxSustained.direct?.median ?? Number.NaN), 2)}`,
          fmt(p99At("quanta") / p99At("direct"), 2),
        ],
        ...(systems.includes("quanta-aof")
          ? [
              [
                "quanta-aof / quanta (the cost of AOF always)",
                fmt((maxSustained["quanta-aof"]?.median ?? Number.NaN) / q, 2),
                fmt(p99At("quanta-aof") / p99At("quanta"), 2),
              ],
            ]
          : []),
        ...(systems.includes("quanta-1w")
          ? [
              [
                "quanta-1w / quanta (one worker process instead of two)",
                fmt((maxSustained["quanta-1w"]?.median ?? Number.NaN) / q, 2),
                fmt(p99At("quanta-1w") / p99At("quanta"), 2),
              ],
            ]
          : []),
        ...(systems.includes("quanta-cluster")
          ? [
              [
                "quanta-cluster / quanta (Redis Cluster of 3 masters + 3 replicas, AOF always, against one Redis)",
                fmt((maxSustained["quanta-cluster"]?.median ?? Number.NaN) / q, 2),
                fmt(p99At("quanta-cluster") / p99At("quanta"), 2),
              ],
            ]
          : []),
      ],
    ),
  );
  lines.push("");
  {
    // What one attempt costs the whole box at each system's own maximum sustained rate: on a machine
    // shared with the database, Redis and the load generator, the sum bounds the rate at which every
    // core would be busy (per-attempt costs fall as batches grow, so the bound is for that rate).
    const cores = availableParallelism();
    const rows: string[][] = [];
    for (const sys of systems) {
      // The median of an even number of repetitions can fall between two rungs: the rung below it.
      const rate = Math.max(0, ...rates.filter((r) => r <= maxSustained[sys]!.median));
      const xs = at(sys, rate);
      if (xs.length === 0) continue;
      const c = (f: (u: StepResult["cpuUsPerAttempt"]) => number) =>
        median(xs.map((r) => (r.cpuUsPerAttempt ? f(r.cpuUsPerAttempt) : Number.NaN)));
      const total = c(cpuTotalUs);
      // Which of the system's processes its share is (results written before this was measured have none).
      const names = [...new Set(xs.flatMap((r) => Object.keys(r.cpuUsPerAttemptByProcess ?? {})))];
      const byProcess =
        names.length < 2
          ? ""
          : names
              .map((n) => `${n} ${fmt(median(xs.map((r) => r.cpuUsPerAttemptByProcess?.[n] ?? Number.NaN)))}`)
              .join(", ");
      rows.push([
        sys,
        fmt(rate),
        `${fmt(c((u) => u.services))}${byProcess ? ` (${byProcess})` : ""}`,
        fmt(c((u) => u.postgres)),
        fmt(c((u) => u.redis)),
        fmt(c((u) => u.driver)),
        fmt(total),
        `${fmt((cores * 1e6) / total)}/s`,
      ]);
    }
    if (rows.length > 0) {
      lines.push(
        `### Where the CPU goes (µs of CPU per attempt at each system's maximum sustained rate, medians; ${cores} cores)`,
      );
      lines.push("");
      lines.push(
        md(
          [
            "system",
            "at /s",
            "its processes",
            "Postgres",
            "Redis",
            "load generator",
            "total",
            `${cores} cores at this cost`,
          ],
          rows,
        ),
      );
      lines.push("");
    }
  }
  lines.push("### Figures at each offered rate (medians over the repetitions that reached it)");
  lines.push("");
  const rows: string[][] = [];
  for (const s of systems) {
    for (const rate of rates) {
      const xs = at(s, rate);
      if (xs.length === 0) continue;
      const m = (f: (r: StepResult) => number | null | undefined) => median(xs.map((r) => f(r) ?? Number.NaN));
      rows.push([
        s,
        fmt(rate),
        fmt(m((r) => r.achievedPerS)),
        fmt(
          m((r) => r.ackMs.p50),
          1,
        ),
        fmt(
          m((r) => r.ackMs.p99),
          1,
        ),
        fmt(
          m((r) => r.ackMs.p999),
          1,
        ),
        `${fmt(100 * m((r) => r.share200), 1)} / ${fmt(100 * m((r) => r.share202), 1)}`,
        s === "floor"
          ? "-"
          : `${fmt(
              m((r) => r.decisionMs?.p50),
              1,
            )} / ${fmt(
              m((r) => r.decisionMs?.p99),
              1,
            )}`,
        s === "floor" ? "-" : fmt(m((r) => r.decidedPerS)),
        s === "floor"
          ? "-"
          : fmt(
              m((r) => r.allGrantedS),
              1,
            ),
        s === "floor"
          ? "-"
          : fmt(
              m((r) => r.inversionMs),
              0,
            ),
        fmt(
          m((r) => r.redisCpuUsPerAttempt),
          1,
        ),
        fmt(
          m((r) => r.redisCommandsPerAttempt),
          1,
        ),
        fmt(
          m((r) => r.pgCommitsPerAttempt),
          3,
        ),
        fmt(
          m((r) => r.walBytesPerAttempt),
          0,
        ),
        fmt(
          m((r) => (r.cpuUsPerAttempt ? cpuTotalUs(r.cpuUsPerAttempt) : Number.NaN)),
          0,
        ),
        fmt(
          m((r) => Math.max(...Object.values(r.rssPeakMiB))),
          0,
        ),
        `${fmt(
          m((r) => r.redisMemory.beforeBytes / 2 ** 20),
          1,
        )} / ${fmt(
          m((r) => r.redisMemory.peakBytes / 2 ** 20),
          1,
        )} / ${fmt(
          m((r) => r.redisMemory.afterBytes / 2 ** 20),
          1,
        )}`,
        xs.every((r) => r.sustained) ? "yes" : xs.some((r) => r.sustained) ? "some" : "no",
        xs.some((r) => r.invariantsOk === false) ? "BROKEN" : xs.every((r) => r.invariantsOk === null) ? "-" : "hold",
      ]);
    }
  }
  lines.push(
    md(
      [
        "system",
        "offered/s",
        "achieved/s",
        "ack p50 ms",
        "ack p99 ms",
        "ack p99.9 ms",
        "200 / 202 %",
        "decision p50 / p99 ms",
        "decided/s",
        "all granted s",
        "inversion ms",
        "Redis µs/att",
        "Redis cmds/att",
        "PG commits/att",
        "WAL B/att",
        "CPU µs/att (all)",
        "peak RSS MiB",
        "Redis MiB before/peak/after",
        "sustained",
        "I1–I6, deadlocks",
      ],
      rows,
    ),
  );
  lines.push("");
  const broken = results.filter((r) => r.invariantsOk === false);
  if (broken.length > 0) {
    lines.push("### Runs that broke an invariant (reported as failed, whatever their speed)");
    for (const r of broken)
      lines.push(`- ${r.system} ${r.offeredPerS}/s rep ${r.rep}: ${r.invariantProblems.join("; ")}`);
    lines.push("");
  }
  return { maxSustained, markdown: lines.join("\n") };
}

function md(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
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

/** Answer p99 against offered rate, one line per system (log scale), as a standalone SVG. */
export function chartSvg(results: readonly StepResult[], systems: readonly SystemName[]): string {
  const W = 760,
    H = 420,
    L = 70,
    R = 150,
    T = 40,
    B = 50;
  const rates = [...new Set(results.map((r) => r.offeredPerS))].sort((a, b) => a - b);
  const maxRate = Math.max(...rates, 1);
  const p99s = results.map((r) => r.ackMs.p99).filter((x) => x > 0 && Number.isFinite(x));
  const lo = Math.max(0.5, Math.min(...p99s, 10) / 1.5);
  const hi = Math.max(...p99s, 200) * 1.5;
  const x = (rate: number) => L + ((W - L - R) * rate) / maxRate;
  const y = (ms: number) =>
    T + (H - T - B) * (1 - (Math.log10(ms) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)));
  const colors: Record<string, string> = {
    quanta: "#1f77b4",
    direct: "#d62728",
    floor: "#2ca02c",
    "quanta-aof": "#9467bd",
    "quanta-1w": "#ff7f0e",
    "quanta-cluster": "#8c564b",
  };
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    `<text x="${L}" y="22" font-size="15" font-weight="bold">Answer p99 vs offered rate (median over repetitions)</text>`,
  );
  for (let e = Math.ceil(Math.log10(lo)); e <= Math.floor(Math.log10(hi)); e++) {
    const v = 10 ** e;
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${v} ms</text>`,
    );
  }
  parts.push(
    `<line x1="${L}" x2="${W - R}" y1="${y(100)}" y2="${y(100)}" stroke="#999" stroke-dasharray="6 4"/><text x="${W - R + 4}" y="${y(100) + 4}" fill="#666">p99 limit 100 ms</text>`,
  );
  for (const rate of rates) parts.push(`<text x="${x(rate)}" y="${H - B + 18}" text-anchor="middle">${rate}</text>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">offered attempts per second</text>`);
  systems.forEach((s, i) => {
    const pts = rates
      .map((rate) => {
        const xs = results.filter((r) => r.system === s && r.offeredPerS === rate).map((r) => r.ackMs.p99);
        return xs.length ? [rate, median(xs)] : undefined;
      })
      .filter((p): p is number[] => p !== undefined && Number.isFinite(p[1]!));
    if (pts.length === 0) return;
    parts.push(
      `<polyline fill="none" stroke="${colors[s]}" stroke-width="2.5" points="${pts.map(([r, v]) => `${x(r!)},${y(Math.max(lo, v!))}`).join(" ")}"/>`,
    );
    for (const [r, v] of pts)
      parts.push(`<circle cx="${x(r!)}" cy="${y(Math.max(lo, v!))}" r="3.5" fill="${colors[s]}"/>`);
    parts.push(
      `<rect x="${W - R + 10}" y="${T + 20 + i * 22}" width="14" height="4" fill="${colors[s]}"/><text x="${W - R + 30}" y="${T + 26 + i * 22}">${s}</text>`,
    );
  });
  parts.push(`</svg>`);
  return parts.join("\n");
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
