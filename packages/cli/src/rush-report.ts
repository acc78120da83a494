import { mkdirSync, writeFileSync } from "node:fs";
import { rushPage } from "./rush-html.js";
import { rushText, type RushFacts } from "./rush-text.js";

/**
 * The rush's report in its three forms, all rendered from the same facts: the text printed at the
 * end, the JSON (the facts themselves) and the self-contained HTML page, written under rush-results/.
 */
export interface RushReport {
  ok: boolean;
  text: string;
  json: Record<string, unknown>;
  /** The same report with charts over the run, as one self-contained HTML page. */
  html: string;
}

export function rushReport(facts: RushFacts): RushReport {
  const text = rushText(facts);
  return { ok: facts.ok, text, json: { ...facts }, html: rushPage(facts, text) };
}

/** Writes the JSON and the HTML report under rush-results/; returns both paths. */
export function writeRushResult(report: Pick<RushReport, "json" | "html">): { json: string; html: string } {
  const dir = new URL("../../../rush-results/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const stamp = `rush-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  const json = new URL(`${stamp}.json`, dir);
  const html = new URL(`${stamp}.html`, dir);
  writeFileSync(json, `${JSON.stringify(report.json, null, 2)}\n`);
  writeFileSync(html, report.html);
  return { json: json.pathname, html: html.pathname };
}
