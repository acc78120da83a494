import type { RushFacts } from "./rush-text.js";
import type { RushSeries } from "./rush-series.js";
import { chartHtml, logRange } from "./rush-chart.js";
import { escapeHtml } from "./html-escape.js";
import { countsHtml, figuresHtml, invariantsHtml, latencyHtml, refundsHtml, stockHtml } from "./rush-html-tables.js";

/**
 * The rush as pictures: a self-contained HTML page (inline SVG, no script, no network) that
 * operators and engineers can share after a rehearsal. This file is the page's shell: the verdict,
 * the order of the sections, the charts over the run and the style; the series are rush-series.ts,
 * the drawing rush-chart.ts, the tables rush-html-tables.ts.
 */
/** What the page says first: the verdict, the key figures, the invariants. */
function verdictHtml(f: RushFacts): string {
  if (f.ok) return `<p class="verdict pass">PASS: all six invariants hold, and Postgres saw no deadlock.</p>`;
  const broken = f.invariants.filter((c) => !c.ok).map((c) => c.id);
  return `<p class="verdict fail">FAIL: ${escapeHtml(broken.join(", "))} broken; see below.</p>`;
}

function chartsHtml(s: RushSeries): string {
  const ack = { p50: s.ackMs.p50, p99: s.ackMs.p99 };
  const decision = { p50: s.decisionMs.p50, p99: s.decisionMs.p99 };
  // One log axis for both latency charts, so that they compare at a glance.
  const latencyRange = logRange(ack, decision);
  const phases = s.refundPhase
    ? [
        {
          ...s.refundPhase,
          label: "refunds",
          legend: "refund phase: refunds sent, then new payers claim the returned vouchers",
        },
      ]
    : [];
  return [
    chartHtml(
      "Answers per second, by outcome (one per callback: a resend is answered again, so granted answers go on after a tier sold out)",
      "answers / s",
      s.answersByOutcome,
      { integer: true, phases },
    ),
    chartHtml("Vouchers remaining per tier (quota minus held)", "vouchers", s.remainingByTier, {
      integer: true,
      phases,
    }),
    chartHtml("Attempts queued, not yet decided", "attempts", { queued: s.queued }, { integer: true, phases }),
    chartHtml("Answer latency (load generator)", "ms (log scale)", ack, { log: true, range: latencyRange, phases }),
    chartHtml(
      "Decision latency (received to committed; seconds with no decision have no point)",
      "ms (log scale)",
      decision,
      { log: true, range: latencyRange, phases },
    ),
  ].join("\n");
}

const STYLE = `
  body { font-family: sans-serif; margin: 12px; color: #222; max-width: 1000px; }
  h1 { font-size: 20px; overflow-wrap: anywhere; }
  figure { margin: 20px 0; max-width: 720px; }
  figcaption { font-weight: bold; margin-bottom: 4px; }
  svg { display: block; height: auto; }
  .legend { list-style: none; padding: 0; margin: 4px 0 0 0; display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 13px; }
  .swatch { display: inline-block; width: 14px; height: 4px; margin: 0 6px 3px 0; vertical-align: middle; }
  .swatch.phase { height: 10px; border: 1px dashed; }
  .scroll { overflow-x: auto; max-width: 100%; }
  pre { background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 12px; }
  table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
  th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
  td:nth-child(n+2) { font-variant-numeric: tabular-nums; }
  table[data-table="invariants"] { min-width: 560px; }
  table[data-table="stock"] td, table[data-table="latency"] td:nth-child(n+2), table[data-table="outcomes"] td:nth-child(n+2),
  table[data-table="refunds"] td, table[data-table="counts"] td:nth-child(2) { white-space: nowrap; }
  td.detail { font-size: 12px; color: #555; overflow-wrap: anywhere; min-width: 240px; }
  .note { font-size: 13px; color: #555; }
  .verdict { font-size: 22px; font-weight: bold; padding: 10px 14px; border-radius: 6px; }
  .verdict.pass, td.pass { color: #1a7f37; } .verdict.pass { background: #e6f4ea; }
  .verdict.fail, td.fail { color: #b42318; } .verdict.fail { background: #fdecea; }
  .settings { color: #555; font-size: 13px; }
`;

/** The page: summary first (verdict, figures, invariants), then the counts, stock, refunds, latency, the charts, the text report. */
export function rushPage(f: RushFacts, text: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(f.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(f.title)}</h1>
<section id="summary">
${verdictHtml(f)}
${figuresHtml(f)}
${invariantsHtml(f)}
<p class="settings">${f.settings.map(([k, v]) => `${escapeHtml(k)}: <b>${escapeHtml(v)}</b>`).join(" · ")}</p>
</section>
${countsHtml(f)}
${stockHtml(f)}
${refundsHtml(f)}
${latencyHtml(f)}
<h2>Per second</h2>
<p class="note">Per second of the run. Answers and answer latency as the load generator saw them; decision latency, stock and the queue from the instants Postgres stored for each attempt. Vouchers remaining = quota minus held (granted less returned by refunds): a voucher a refund returns is granted again, so remaining can rise and fall again, never below zero.${f.series.refundPhase ? " The shaded band is the refund phase." : ""}</p>
${chartsHtml(f.series)}
<details><summary>The full text report</summary>
<pre>${escapeHtml(text)}</pre>
</details>
</body>
</html>
`;
}
