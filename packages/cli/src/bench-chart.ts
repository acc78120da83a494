import type { StepResult, SystemName } from "./bench.js";
import { median } from "./bench-report-format.js";

/** The canvas and its margins (left, right, top, bottom), in px. */
const W = 760,
  H = 420,
  L = 70,
  R = 150,
  T = 40,
  B = 50;

const COLORS: Record<string, string> = {
  quanta: "#1f77b4",
  direct: "#d62728",
  floor: "#2ca02c",
  "quanta-aof": "#9467bd",
  "quanta-1w": "#ff7f0e",
  "quanta-cluster": "#8c564b",
};

/** Where a rate and a latency fall on the chart; lo and hi bound the log-scaled y axis. */
interface Scale {
  rates: number[];
  lo: number;
  hi: number;
  x: (rate: number) => number;
  y: (ms: number) => number;
}

/** Answer p99 against offered rate, one line per system (log scale), as a standalone SVG. */
export function chartSvg(results: readonly StepResult[], systems: readonly SystemName[]): string {
  const scale = chartScale(results);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="15" font-weight="bold">Answer p99 vs offered rate (median over repetitions)</text>`,
    ...axes(scale),
    ...systems.flatMap((s, i) => series(results, s, i, scale)),
    `</svg>`,
  ].join("\n");
}

function chartScale(results: readonly StepResult[]): Scale {
  const rates = [...new Set(results.map((r) => r.offeredPerS))].sort((a, b) => a - b);
  const maxRate = Math.max(...rates, 1);
  const p99s = results.map((r) => r.ackMs.p99).filter((x) => x > 0 && Number.isFinite(x));
  const lo = Math.max(0.5, Math.min(...p99s, 10) / 1.5);
  const hi = Math.max(...p99s, 200) * 1.5;
  return {
    rates,
    lo,
    hi,
    x: (rate) => L + ((W - L - R) * rate) / maxRate,
    y: (ms) => T + (H - T - B) * (1 - (Math.log10(ms) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))),
  };
}

/** A grid line per power of ten, the p99 limit, and the rates under the x axis. */
function axes({ rates, lo, hi, x, y }: Scale): string[] {
  const parts: string[] = [];
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
  return parts;
}

/** One system's line, its points and its legend entry (the i-th); nothing when it has no point. */
function series(results: readonly StepResult[], s: SystemName, i: number, { rates, lo, x, y }: Scale): string[] {
  const pts = rates
    .map((rate) => {
      const xs = results.filter((r) => r.system === s && r.offeredPerS === rate).map((r) => r.ackMs.p99);
      return xs.length ? [rate, median(xs)] : undefined;
    })
    .filter((p): p is number[] => p !== undefined && Number.isFinite(p[1]!));
  if (pts.length === 0) return [];
  return [
    `<polyline fill="none" stroke="${COLORS[s]}" stroke-width="2.5" points="${pts.map(([r, v]) => `${x(r!)},${y(Math.max(lo, v!))}`).join(" ")}"/>`,
    ...pts.map(([r, v]) => `<circle cx="${x(r!)}" cy="${y(Math.max(lo, v!))}" r="3.5" fill="${COLORS[s]}"/>`),
    `<rect x="${W - R + 10}" y="${T + 20 + i * 22}" width="14" height="4" fill="${COLORS[s]}"/><text x="${W - R + 30}" y="${T + 26 + i * 22}">${s}</text>`,
  ];
}
