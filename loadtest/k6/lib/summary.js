import { config, env } from "./config.js";
import { OUTCOMES, TIERS } from "./thresholds.js";

// handleSummary helpers: the full k6 summary as JSON, and a short human report (also printed) that
// a person can read at a glance after a rehearsal. SUMMARY_DIR chooses where both land (default .),
// SUMMARY_STAMP adds a run's time to their names.

/** @param {any} m @param {string} field */
const value = (m, field) => (m && m.values && m.values[field] !== undefined ? m.values[field] : undefined);
/**
 * A number with thousands separators and a fixed number of decimals. Not toLocaleString: k6's
 * JavaScript runtime has no Intl, and takes its argument for a radix (a RangeError).
 * @param {number | undefined} n @param {number} [digits]
 */
export function fmt(n, digits = 0) {
  if (n === undefined || !Number.isFinite(n)) return "-";
  const fixed = Math.abs(n).toFixed(digits);
  const dot = fixed.indexOf(".");
  const whole = dot === -1 ? fixed : fixed.slice(0, dot);
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${n < 0 ? "-" : ""}${grouped}${dot === -1 ? "" : fixed.slice(dot)}`;
}

/**
 * The summary: promises kept or broken, budgets within or over, the figures, and a verdict file
 * (`<script>-verdict.json`) that `npm run k6` reads to decide its exit code.
 * @param {any} data the object k6 passes to handleSummary
 * @param {string} script a short name (rush-0913, soak, ...)
 * @param {{ budgets?: import("./thresholds.js").Budget[], extra?: string[], budgetOverIsResult?: boolean }} [opts]
 *   budgets: the script's budgets (none for smoke); extra: lines a script adds at the end (a
 *   breakpoint's rate, say); budgetOverIsResult: a budget over is what the run looks for (breakpoint)
 */
export function report(data, script, opts = {}) {
  const inForce = opts.budgets ?? [];
  const extra = opts.extra ?? [];
  const m = data.metrics;
  const lines = [];
  lines.push(`# quanta k6 ${script}: ${config.baseUrl}, run ${config.runId}`);
  lines.push("");
  const budgetMetrics = new Set(inForce.map((b) => b.metric));
  const promisesBroken = Object.entries(m)
    .filter(
      ([name, metric]) =>
        !budgetMetrics.has(name) &&
        metric.thresholds &&
        Object.values(metric.thresholds).some((t) => !(/** @type {any} */ (t).ok)),
    )
    .map(([name]) => name);
  const budgetsOver = inForce
    .map((b) => ({ metric: b.metric, what: b.what, limit: b.limit, value: value(m[b.metric], b.stat) ?? 0, budget: b }))
    .filter((b) => !(b.value < b.limit))
    .map((b) => ({ ...b, text: `${b.what} ${shown(b.budget, b.value)} (budget < ${shown(b.budget, b.limit)})` }));
  lines.push(
    promisesBroken.length === 0
      ? "Promises: all kept (answers keep the contract, resends get their first answer, other bodies 409, no 5xx but 503)."
      : `PROMISES BROKEN: ${promisesBroken.join(", ")}`,
  );
  if (inForce.length > 0) {
    const mode = config.budgets === "gate" ? "they fail the run, BUDGETS=gate" : "reported only, BUDGETS=report";
    const overText = budgetsOver.map((b) => b.text).join("; ");
    lines.push(budgetsOver.length === 0 ? `Budgets (${mode}): all within.` : `Budgets (${mode}): OVER: ${overText}.`);
  }
  lines.push("");
  lines.push(`| figure | value |`);
  lines.push(`| --- | ---: |`);
  lines.push(`| callbacks sent | ${fmt(value(m["http_reqs{name:callback}"] ?? m.http_reqs, "count"))} |`);
  lines.push(`| request rate (/s) | ${fmt(value(m.http_reqs, "rate"), 1)} |`);
  lines.push(`| dropped arrivals | ${fmt(value(m.dropped_iterations, "count") ?? 0)} |`);
  lines.push(`| failed requests | ${fmt(100 * (value(m.http_req_failed, "rate") ?? 0), 2)} % |`);
  lines.push(`| answers keeping the contract | ${fmt(100 * (value(m.quanta_contract_ok, "rate") ?? 0), 3)} % |`);
  lines.push(
    `| resends answered as first / other bodies 409 | ${fmt(100 * (value(m.quanta_resend_same_answer, "rate") ?? 1), 2)} % / ${fmt(100 * (value(m.quanta_conflict_409, "rate") ?? 1), 2)} % |`,
  );
  lines.push(`| 202 pending | ${fmt(100 * (value(m.quanta_pending, "rate") ?? 0), 2)} % |`);
  lines.push(`| 503 overloaded | ${fmt(100 * (value(m.quanta_overloaded, "rate") ?? 0), 2)} % |`);
  const ack = m["http_req_duration{name:callback}"] ?? m.http_req_duration;
  lines.push(
    `| answer p50 / p99 / p99.9 (ms) | ${fmt(value(ack, "med"), 1)} / ${fmt(value(ack, "p(99)"), 1)} / ${fmt(value(ack, "p(99.9)"), 1)} |`,
  );
  lines.push("");
  lines.push(`| outcome | answers |`);
  lines.push(`| --- | ---: |`);
  for (const o of OUTCOMES)
    lines.push(
      `| ${o}${o === "error" ? " (401 forged, 409 conflicting bodies, 503, network)" : ""} | ${fmt(value(m[`quanta_answers{outcome:${o}}`], "count") ?? 0)} |`,
    );
  lines.push("");
  lines.push(`| tier | answers granting it (a resend of a grant counts again) |`);
  lines.push(`| --- | ---: |`);
  for (const t of TIERS) lines.push(`| ${t} | ${fmt(value(m[`quanta_granted{tier:${t}}`], "count") ?? 0)} |`);
  lines.push("");
  if (inForce.length > 0) {
    lines.push(`| budget | limit | measured | |`);
    lines.push(`| --- | ---: | ---: | --- |`);
    for (const b of inForce) {
      const v = value(m[b.metric], b.stat) ?? 0;
      lines.push(`| ${b.what} | < ${shown(b, b.limit)} | ${shown(b, v)} | ${v < b.limit ? "within" : "OVER"} |`);
    }
    lines.push("");
  }
  for (const line of extra) lines.push(line);
  if (extra.length > 0) lines.push("");
  lines.push(
    "Check the invariants against the database the run used: npm run quanta -- verify --campaign qianan-2020-b2",
  );
  const text = lines.join("\n") + "\n";
  const dir = env("SUMMARY_DIR", ".").replace(/\/+$/, "");
  // SUMMARY_STAMP (set by npm run k6) keeps one run's files beside its HTML report.
  const stamp = env("SUMMARY_STAMP", "");
  const base = `${dir}/${script}${stamp ? `-${stamp}` : ""}`;
  const verdict = {
    script,
    budgets: config.budgets,
    budgetOverIsResult: opts.budgetOverIsResult ?? false,
    promisesBroken,
    // `text` is how npm run k6 names a budget over: formatted once, here.
    budgetsOver: budgetsOver.map(({ metric, what, limit, value: v, text: t }) => ({
      metric,
      what,
      limit,
      value: v,
      text: t,
    })),
  };
  return {
    stdout: text,
    [`${base}-summary.json`]: JSON.stringify(data, null, 2),
    [`${base}-summary.md`]: text,
    [`${base}-verdict.json`]: JSON.stringify(verdict, null, 2),
  };
}

/** A budget's figure in its unit (a share as a percentage). @param {import("./thresholds.js").Budget} b @param {number} v */
function shown(b, v) {
  return `${fmt(v * b.scale, b.scale === 1 && b.unit === "" ? 0 : b.unit === " ms" ? 1 : 2)}${b.unit}`;
}
