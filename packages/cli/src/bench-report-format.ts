import type { StepResult } from "./bench.js";

/** The bench report's arithmetic and layout: medians that skip what was not measured, numbers and Markdown tables. */
export const median = (xs: readonly number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
};

export const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || !Number.isFinite(n)
    ? "-"
    : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** CPU per attempt of every process group together (results written before it was measured have none). */
export const cpuTotalUs = (u: StepResult["cpuUsPerAttempt"]): number => u.services + u.postgres + u.redis + u.driver;

export function md(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}
