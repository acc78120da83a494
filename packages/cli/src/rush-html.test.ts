import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { rushPage } from "./rush-html.js";
import { chartHtml, logRange, logTicks, niceTicks } from "./rush-chart.js";
import { remainingSeries } from "./rush-series.js";
import { withSeparators } from "./rush-counts.js";
import { rushText, type RushFacts } from "./rush-text.js";

/** What can be checked of the rush report without eyes (issue #21). */
describe("rush report charts", () => {
  it("counts vouchers remaining as quota minus held: refunds give back, so re-grants never look like overselling", () => {
    // 4 granted, 2 returned by refunds, 2 granted again: held never passes the quota of 4.
    const remaining = remainingSeries(4, [3, 1, 0, 2], [0, 0, 2, 0]);
    expect(remaining).toEqual([1, 0, 2, 0]);
  });

  it("puts ticks on round numbers (1, 2 or 5 times a power of ten), log ticks at 1-2-5", () => {
    expect(niceTicks(443)).toEqual([0, 100, 200, 300, 400, 500]);
    expect(niceTicks(1_991)).toEqual([0, 500, 1_000, 1_500, 2_000]);
    expect(niceTicks(3)).toEqual([0, 1, 2, 3]);
    expect(logTicks(1, 100)).toEqual([1, 2, 5, 10, 20, 50, 100]);
    expect(logRange({ a: [3, null, 40] }, { b: [900] })).toEqual([1, 1_000]);
  });

  it("draws a legend entry for every series and the phase, a lone point as a dot, and thousands separators", () => {
    const html = chartHtml(
      "t",
      "u",
      { granted: [1_500, 2_500], late: [null, null, 7], error: [0, 1, 0] },
      { integer: true, phases: [{ fromS: 1, toS: 2, label: "refunds", legend: "refund phase" }] },
    );
    expect(legendOf(html)).toEqual(["granted", "late", "error"]);
    expect(html).toContain('data-phase="refunds"');
    expect(html).toContain('class="phase"');
    expect(html).toContain("<circle");
    expect(html).toContain(">2,000</text>");
    expect(html).toContain("background:#d62728"); // errors in the warning colour
    expect(html).not.toMatch(/>\d+\.\d+<\/text>/); // no fractional ticks on counts
  });

  it("puts separators into free text, not into ids, dates or decimals' fractions", () => {
    expect(withSeparators("8084 refusals, 1237800.00 of 2000000.00 CNY; t-12345, 2020-09-14, A2-400")).toBe(
      "8,084 refusals, 1,237,800.00 of 2,000,000.00 CNY; t-12345, 2020-09-14, A2-400",
    );
  });
});

/**
 * A real rush, recorded (see test/fixtures/README.md): the page rendered again from its JSON, and
 * every count on it checked against the others and against what was computed apart from the
 * counts (the per-second series, the invariants' own evidence from Postgres).
 */
const FIXTURE = new URL("../test/fixtures/rush-recorded.json", import.meta.url);
const recorded = (): RushFacts => JSON.parse(readFileSync(FIXTURE, "utf8")) as RushFacts;

describe("the rush report of a recorded run", () => {
  it("reconciles every count on the page", () => {
    const f = recorded();
    expect(reconcile(rushPage(f, rushText(f)), f)).toEqual([]);
  });

  it("fails when a count stops reconciling", () => {
    const answers = recorded();
    answers.counts.answers.byAnswer["200 granted"]! += 1; // a table that counts one answer twice
    expect(reconcile(rushPage(answers, rushText(answers)), answers)).not.toEqual([]);
    const total = recorded();
    total.counts.answers.total += 1; // a total that is not the sum of its rows
    expect(reconcile(rushPage(total, rushText(total)), total)).not.toEqual([]);
    const refunds = recorded();
    refunds.counts.refunds!.requests = refunds.counts.refunds!.payments; // "each sent twice" beside half the answers
    expect(reconcile(rushPage(refunds, rushText(refunds)), refunds)).not.toEqual([]);
    const stock = recorded();
    stock.counts.vouchers.tiers[0]!.returned += 1;
    expect(reconcile(rushPage(stock, rushText(stock)), stock)).not.toEqual([]);
  });

  it("opens with the summary: verdict, figures, every invariant named, then the rest", () => {
    const f = recorded();
    const html = rushPage(f, rushText(f));
    const body = html.slice(html.indexOf("<body>"));
    expect(body.indexOf('<section id="summary">')).toBeLessThan(body.indexOf("<h2>What was counted"));
    expect(body.indexOf('class="verdict')).toBeLessThan(body.indexOf("<table"));
    expect(body.indexOf("</section>")).toBeLessThan(body.indexOf("<svg"));
    expect(html).toContain(f.ok ? "PASS: all six invariants hold" : "FAIL:");
    for (const id of ["I1", "I2", "I3", "I4", "I5", "I6"]) expect(html).toContain(`<td>${id} `);
    expect(html).toContain('<meta name="viewport"');
  });

  it("draws no negative stock, a legend entry for every series, and the refund phase on every timeline", () => {
    const f = recorded();
    const html = rushPage(f, rushText(f));
    for (const [tier, xs] of Object.entries(f.series.remainingByTier)) {
      const quota = Number(/quota ([\d,]+)/.exec(tier)![1]!.replace(/,/g, ""));
      for (const v of xs) expect(v, tier).toBeGreaterThanOrEqual(0);
      for (const v of xs) expect(v, tier).toBeLessThanOrEqual(quota);
    }
    const figures = [...html.matchAll(/<figure data-chart="[\s\S]*?<\/figure>/g)].map((m) => m[0]);
    expect(figures.map(legendOf)).toEqual([
      Object.keys(f.series.answersByOutcome),
      Object.keys(f.series.remainingByTier),
      ["queued"],
      ["p50", "p99"],
      ["p50", "p99"],
    ]);
    expect(f.series.refundPhase).not.toBeNull();
    for (const fig of figures) {
      expect(fig).toMatch(/<rect class="phase" x="[\d.]+" y="\d+" width="[\d.]+"/);
      expect(fig).toContain('<li data-phase="refunds">');
    }
  });
});

function legendOf(html: string): string[] {
  return [...html.matchAll(/<li data-series="([^"]*)"/g)].map((m) => m[1]!);
}

const unescape = (s: string) =>
  s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&");
const num = (s: string) => Number(s.replace(/,/g, ""));

/** A table of the page by its data-table name: each row's cells (th and td) as text. */
function tableOf(html: string, name: string): string[][] {
  const t = new RegExp(`<table data-table="${name}">([\\s\\S]*?)</table>`).exec(html);
  if (!t) return [];
  return [...t[1]!.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((r) =>
    [...r[1]!.matchAll(/<t[dh][^>]*>([\s\S]*?)<\/t[dh]>/g)].map((c) => unescape(c[1]!)),
  );
}

/** The number an invariant's evidence gives before `words`, e.g. "551 sold_out refusals". */
function evidence(f: RushFacts, id: string, pattern: RegExp): number {
  const m = pattern.exec(f.invariants.find((c) => c.id === id)?.detail ?? "");
  return m ? num(m[1]!) : Number.NaN;
}

/**
 * Every figure the page shows twice, compared; each figure against what was computed apart from
 * the counts. Returns what does not reconcile (empty: everything does).
 */
function reconcile(html: string, f: RushFacts): string[] {
  const problems: string[] = [];
  const same = (what: string, ...xs: number[]) => {
    if (xs.some((x) => x !== xs[0] || Number.isNaN(x))) problems.push(`${what}: ${xs.join(" vs ")}`);
  };
  const sum = (xs: number[]) => xs.reduce((t, x) => t + x, 0);
  const byLabel = (rows: string[][], label: string) => rows.find((r) => r[0] === label);

  // Answers and decisions: each column's rows add up to its total; answers equal what the series drew.
  const outcomes = tableOf(html, "outcomes").slice(1);
  const rows = outcomes.filter((r) => r[0] !== "total");
  const total = byLabel(outcomes, "total") ?? [];
  same("answers: rows vs total", sum(rows.map((r) => num(r[1]!))), num(total[1] ?? "NaN"));
  same(
    "decisions: rows vs total",
    sum(rows.filter((r) => !r[2]!.startsWith("n/a")).map((r) => num(r[2]!))),
    num(total[2] ?? "NaN"),
  );
  const seriesAnswers = sum(Object.values(f.series.answersByOutcome).flat());
  const counted = tableOf(html, "counts");
  const countOf = (prefix: string) => num(counted.find((r) => r[0]!.startsWith(prefix))?.[1] ?? "NaN");
  same(
    "answers: total vs callbacks sent vs answers per second",
    num(total[1] ?? "NaN"),
    countOf("callbacks sent in the rush"),
    seriesAnswers,
  );
  same(
    "callbacks by kind vs sent",
    sum(counted.filter((r) => r[0]!.startsWith("callbacks sent of kind")).map((r) => num(r[1]!))),
    countOf("callbacks sent in the rush"),
  );
  same("decisions stored: outcomes vs counts", num(total[2] ?? "NaN"), countOf("decisions stored"));
  same(
    "sold_out decisions vs I6",
    num(byLabel(outcomes, "rejected sold_out")?.[2] ?? "0"),
    evidence(f, "I6", /^([\d,]+) sold_out refusals/),
  );
  const figures = tableOf(html, "figures");
  same(
    "acknowledged: summary vs counts vs I3",
    num(byLabel(figures, "distinct attempts acknowledged (answered 200/202)")?.[1] ?? "NaN"),
    countOf("distinct attempts acknowledged"),
    evidence(f, "I3", /^([\d,]+) acknowledged txns/),
  );

  // Stock: per tier held = granted − returned and held + remaining = quota; totals; the series' last second.
  const stock = tableOf(html, "stock").slice(1);
  const tiers = stock.filter((r) => r[0] !== "total");
  const stockTotal = byLabel(stock, "total") ?? [];
  const lastRemaining = Object.fromEntries(
    Object.entries(f.series.remainingByTier).map(([k, xs]) => [k.split(" ")[0]!, xs.at(-1)!]),
  );
  for (const r of tiers) {
    const tier = r[0]!;
    const cell = (i: number) => num(r[i] ?? "NaN");
    const [quota, held, remaining, granted, returned] = [cell(1), cell(2), cell(3), cell(4), cell(5)];
    same(`${tier}: held vs granted − returned`, held, granted - returned);
    same(`${tier}: held + remaining vs quota`, held + remaining, quota);
    same(`${tier}: remaining vs the chart's last second`, remaining, lastRemaining[tier] ?? Number.NaN);
  }
  for (const [col, name] of [
    [1, "quota"],
    [2, "held"],
    [3, "remaining"],
    [4, "granted"],
    [5, "returned"],
  ] as const)
    same(`stock total ${name}`, sum(tiers.map((r) => num(r[col]!))), num(stockTotal[col] ?? "NaN"));
  const [heldSummary, quotaSummary] = (byLabel(figures, "vouchers held / quota")?.[1] ?? "NaN / NaN").split(" / ");
  same("held: summary vs stock", num(heldSummary!), num(stockTotal[2] ?? "NaN"));
  same("quota: summary vs stock", num(quotaSummary ?? "NaN"), num(stockTotal[1] ?? "NaN"));
  same("granted: decisions vs stock", num(byLabel(outcomes, "granted")?.[2] ?? "NaN"), num(stockTotal[4] ?? "NaN"));
  same(
    "returned: stock vs I1",
    num(stockTotal[5] ?? "NaN"),
    evidence(f, "I1", /\(([\d,]+) vouchers returned by refunds\)/),
  );

  // Refunds: answers add up to the requests, twice per payment plus the probes; returned and kept twice each.
  if (f.counts.refunds) {
    const refunds = tableOf(html, "refunds").slice(1);
    const answers = refunds.filter((r) => r[0] !== "total");
    const requests = num(byLabel(refunds, "total")?.[1] ?? "NaN");
    const answer = (key: string) => num(byLabel(answers, key)?.[1] ?? "0");
    const payments = evidence(f, "refunds", /^([\d,]+) refunds:/);
    same("refund answers vs requests", sum(answers.map((r) => num(r[1]!))), requests);
    same(
      "refund requests vs twice the payments and the probes",
      requests,
      2 * payments + answer("404 unknown_txn") + answer("422 refund_exceeds_payment"),
    );
    same(
      "voucher_returned answers vs twice the returned vouchers",
      answer("200 voucher_returned"),
      2 * num(stockTotal[5] ?? "NaN"),
    );
    same(
      "refund payments: summary vs the stored refunds",
      num(/^([\d,]+) payments refunded/.exec(byLabel(figures, "refunds")?.[1] ?? "")?.[1] ?? "NaN"),
      payments,
    );
    same(
      "kept: summary vs answers",
      2 * num(/([\d,]+) kept/.exec(byLabel(figures, "refunds")?.[1] ?? "")?.[1] ?? "NaN"),
      answer("200 voucher_kept"),
    );
  }

  // No blank cell, and no number of four digits or more without its separators.
  for (const name of ["figures", "invariants", "counts", "outcomes", "stock", "refunds", "latency"])
    for (const cells of tableOf(html, name).slice(name === "figures" ? 0 : 1))
      for (const c of cells) {
        if (c.trim() === "") problems.push(`${name}: a blank cell in ${cells.join(" | ")}`);
        if (/(?<![\w.,\-/+])\d{4,}(?![\w-])/.test(c)) problems.push(`${name}: no thousands separator in "${c}"`);
      }
  return problems;
}
