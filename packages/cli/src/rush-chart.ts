import { escapeHtml } from "./html-escape.js";

/**
 * A line chart as inline SVG, with its title and legend as HTML: axes on round ticks (linear, or
 * log for latencies), any number of named series, shaded phases of the run. No script and no
 * library, so the page that holds it stays one self-contained file.
 */
/** Series colours: no red (errors) and no green (granted), which keep one meaning on every chart. */
const PALETTE = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#8c6d31"];
/** Fixed colours where a series name means the same on every page. */
const NAMED_COLOURS: Record<string, string> = {
  granted: "#2ca02c",
  pending: "#ff7f0e",
  error: "#d62728",
  "rejected: sold_out": "#7f7f7f",
  p50: "#1f77b4",
  p99: "#9467bd",
};
/** Ticks at 1, 2 or 5 times a power of ten, about `count` of them from 0 to at least `max`. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Log-scale ticks at 1, 2 and 5 times each power of ten within [lo, hi]. */
export function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  return ticks;
}

const tickLabel = (v: number) =>
  Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 3 });

interface ChartOptions {
  /** A log axis (for latencies); `range` shares one axis between charts. */
  log?: boolean;
  range?: readonly [lo: number, hi: number];
  /** Whole units (counts): no fractional ticks. */
  integer?: boolean;
  /** Spans of the run shaded and labelled (seconds), with their legend entry. */
  phases?: readonly { fromS: number; toS: number; label: string; legend: string }[];
}

/** The [lo, hi] of a log axis that holds every positive value of the given series. */
export function logRange(...all: Record<string, readonly (number | null)[]>[]): [number, number] {
  const positive = all.flatMap((series) =>
    Object.values(series).flatMap((xs) => xs.filter((v): v is number => v !== null && Number.isFinite(v) && v > 0)),
  );
  if (positive.length === 0) return [1, 10];
  const lo = 10 ** Math.floor(Math.log10(Math.min(...positive)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...positive) * 1.05));
  return [lo, Math.max(hi, lo * 10)];
}

/** One line chart: x = seconds of the run, any number of named series (null = no data that second), optional shaded phases. */
function lineChartSvg(
  title: string,
  unit: string,
  series: Record<string, readonly (number | null)[]>,
  options: ChartOptions = {},
): string {
  const names = Object.keys(series);
  const [W, H, L, R, T, B] = [560, 280, 62, 14, 22, 42];
  const len = Math.max(1, ...names.map((k) => series[k]!.length));
  const values = names.flatMap((k) => series[k]!.filter((v): v is number => v !== null && Number.isFinite(v)));
  const log = options.log === true;
  const [lo, hi] = log ? (options.range ?? logRange(series)) : [0, 0];
  let ticks = log ? logTicks(lo, hi) : niceTicks(Math.max(1, ...values));
  if (options.integer) ticks = ticks.filter((v) => Number.isInteger(v));
  const top = log ? hi : ticks.at(-1)!;
  const x = (i: number) => L + ((W - L - R) * i) / Math.max(1, len - 1);
  const y = (v: number) =>
    log
      ? T +
        (H - T - B) *
          (1 - (Math.log10(Math.min(Math.max(v, lo), hi)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)))
      : T + (H - T - B) * (1 - v / top);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" font-family="sans-serif" font-size="15" role="img" aria-label="${escapeHtml(title)}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  for (const p of options.phases ?? []) {
    const [x0, x1] = [x(p.fromS), Math.max(x(p.toS), x(p.fromS) + 3)];
    parts.push(
      `<rect class="phase" x="${x0.toFixed(1)}" y="${T}" width="${(x1 - x0).toFixed(1)}" height="${H - T - B}" fill="${PHASE_FILL}"/>`,
      `<line x1="${x0.toFixed(1)}" x2="${x0.toFixed(1)}" y1="${T}" y2="${H - B}" stroke="${PHASE_EDGE}" stroke-dasharray="4 3"/>`,
      `<line x1="${x1.toFixed(1)}" x2="${x1.toFixed(1)}" y1="${T}" y2="${H - B}" stroke="${PHASE_EDGE}" stroke-dasharray="4 3"/>`,
      `<text x="${((x0 + x1) / 2).toFixed(1)}" y="${T - 5}" text-anchor="middle" fill="${PHASE_EDGE}">${escapeHtml(p.label)}</text>`,
    );
  }
  for (const v of ticks) {
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/><text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${tickLabel(v)}</text>`,
    );
  }
  parts.push(
    `<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">${escapeHtml(unit)}</text>`,
  );
  const step = Math.max(1, Math.round(niceTicks(len - 1, 7)[1] ?? 1)); // whole seconds
  for (let i = 0; i < len; i += step)
    parts.push(
      `<text x="${x(i).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${i.toLocaleString("en-US")}</text>`,
    );
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">seconds since the first callback</text>`);
  names.forEach((name, k) => parts.push(...seriesSvg(series[name]!, colourOf(name, k), x, y)));
  parts.push(`</svg>`);
  return parts.join("\n");
}

const PHASE_FILL = "#fdf0d5";
const PHASE_EDGE = "#a15c00";
const colourOf = (name: string, k: number) => NAMED_COLOURS[name] ?? PALETTE[k % PALETTE.length]!;

/** A series as polylines broken at missing seconds; a lone point as a dot, since a one-point line draws nothing. */
function seriesSvg(
  values: readonly (number | null)[],
  color: string,
  x: (i: number) => number,
  y: (v: number) => number,
): string[] {
  const segments: string[][] = [[]];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) segments.push([]);
    else segments.at(-1)!.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  });
  return segments.flatMap((seg) => {
    if (seg.length === 1) {
      const [cx, cy] = seg[0]!.split(",");
      return [`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`];
    }
    return seg.length > 1
      ? [`<polyline fill="none" stroke="${color}" stroke-width="2" points="${seg.join(" ")}"/>`]
      : [];
  });
}

/** A chart with its title and a legend in the page's flow, so both wrap on a narrow screen. */
export function chartHtml(
  title: string,
  unit: string,
  series: Record<string, readonly (number | null)[]>,
  options: ChartOptions = {},
): string {
  const legend = [
    ...Object.keys(series).map(
      (name, k) =>
        `<li data-series="${escapeHtml(name)}"><span class="swatch" style="background:${colourOf(name, k)}"></span>${escapeHtml(name)}</li>`,
    ),
    ...(options.phases ?? []).map(
      (p) =>
        `<li data-phase="${escapeHtml(p.label)}"><span class="swatch phase" style="background:${PHASE_FILL};border-color:${PHASE_EDGE}"></span>${escapeHtml(p.legend)}</li>`,
    ),
  ];
  return `<figure data-chart="${escapeHtml(title)}"><figcaption>${escapeHtml(title)}</figcaption>
${lineChartSvg(title, unit, series, options)}
<ul class="legend">${legend.join("")}</ul></figure>`;
}
