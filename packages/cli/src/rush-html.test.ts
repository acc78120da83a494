import { describe, expect, it } from "vitest";
import {
  lineChartSvg,
  logRange,
  logTicks,
  niceTicks,
  remainingSeries,
  rushHtml,
  type RushSeries,
  type RushSummary,
} from "./rush-html.js";

/** What can be checked of the rush report without eyes (issue #21). */
describe("rush report charts", () => {
  it("counts vouchers remaining as quota minus held: refunds give back, so re-grants never look like overselling", () => {
    // 4 granted, 2 returned by refunds, 2 granted again: held never passes the quota of 4.
    const remaining = remainingSeries(4, [3, 1, 0, 2], [0, 0, 2, 0]);
    expect(remaining).toEqual([1, 0, 2, 0]);
    expect(Math.min(...remaining)).toBeGreaterThanOrEqual(0);
  });

  it("puts ticks on round numbers (1, 2 or 5 times a power of ten), log ticks at 1-2-5", () => {
    expect(niceTicks(443)).toEqual([0, 100, 200, 300, 400, 500]);
    expect(niceTicks(1_991)).toEqual([0, 500, 1_000, 1_500, 2_000]);
    expect(niceTicks(3)).toEqual([0, 1, 2, 3]);
    expect(logTicks(1, 100)).toEqual([1, 2, 5, 10, 20, 50, 100]);
    expect(logRange({ a: [3, null, 40] }, { b: [900] })).toEqual([1, 1_000]);
  });

  it("draws a legend entry for every series, a lone point as a dot, and thousands separators", () => {
    const svg = lineChartSvg(
      "t",
      "u",
      { granted: [1_500, 2_500], late: [null, null, 7], error: [0, 1, 0] },
      { integer: true },
    );
    expect(svg.match(/<rect x="\d+" y="\d+" width="14"/g)).toHaveLength(3);
    for (const name of ["granted", "late", "error"]) expect(svg).toContain(`>${name}</text>`);
    expect(svg).toContain("<circle");
    expect(svg).toContain(">2,000</text>");
    expect(svg).toContain('fill="#d62728"'); // errors in the warning colour
    expect(svg).not.toMatch(/>\d+\.\d+<\/text>/); // no fractional ticks on counts
  });

  it("fits the page: a viewport, charts as wide as the page, the two latency charts on one axis", () => {
    const series: RushSeries = {
      seconds: [0, 1],
      answersByOutcome: { granted: [5, 6] },
      ackMs: { p50: [3, 4], p99: [30, 40] },
      decisionMs: { p50: [50, 60], p99: [500, 900] },
      remainingByTier: { "T (quota 10)": [5, 0] },
      queued: [1, 0],
    };
    const html = rushHtml("rush", "text", series);
    expect(html).toContain('<meta name="viewport"');
    expect(html).not.toMatch(/<svg[^>]* width="820"/);
    const axes = [...html.matchAll(/aria-label="(Answer|Decision) latency[^"]*"[\s\S]*?<\/svg>/g)].map((m) =>
      [...m[0].matchAll(/text-anchor="end">([\d,]+)<\/text>/g)].map((t) => t[1]),
    );
    expect(axes).toHaveLength(2);
    expect(axes[0]).toEqual(axes[1]);
    expect(axes[0]).toEqual(["1", "2", "5", "10", "20", "50", "100", "200", "500", "1,000"]);
  });
});

describe("rush report summary", () => {
  const series: RushSeries = {
    seconds: [0, 1],
    answersByOutcome: { granted: [1_200, 300], "rejected: sold_out": [0, 900] },
    ackMs: { p50: [3, 4], p99: [30, 40] },
    decisionMs: { p50: [50, 60], p99: [500, 900] },
    remainingByTier: { "T (quota 4,000)": [2_800, 0] },
    queued: [1, 0],
  };
  const checks = ["I1", "I2", "I3", "I4", "I5", "I6"].map((id) => ({ id, ok: id !== "I6", detail: `${id} evidence` }));
  const summary: RushSummary = {
    ok: false,
    invariants: checks,
    tiers: [{ tierId: "T", quota: 4_000, granted: 4_141, returned: 141, held: 4_000, remaining: 0 }],
    offeredPeakPerS: 1_500,
    acknowledged: 12_345,
    ackMs: { p50: 21.5, p99: 100.25 },
    inversionMs: 5,
    refunds: { chosen: 500, returned: 141, kept: 359 },
    settlement: {
      budgetFen: 200_000_000,
      grantedFen: 1_000_000,
      refundedFen: 10_000,
      netSpentFen: 990_000,
      leftoverFen: 199_010_000,
    },
    settings: [
      ["scenario", "rush-0913"],
      ["commit", "abc1234"],
    ],
  };

  it("comes first: the verdict, every invariant named and judged, stock held against quota, the settings", () => {
    const html = rushHtml("rush", "text", series, summary);
    const verdictAt = html.indexOf('class="verdict fail"');
    expect(verdictAt).toBeGreaterThan(0);
    expect(verdictAt).toBeLessThan(html.indexOf("<svg"));
    expect(html).toContain("FAIL: I6 broken");
    for (const id of ["I1", "I2", "I3", "I4", "I5", "I6"]) expect(html).toContain(`${id} `);
    expect(html.match(/<td class="pass">PASS<\/td>/g)).toHaveLength(5);
    expect(html).toContain("<td>4,000</td><td>4,000</td><td>0</td><td>4,141</td><td>141</td>");
    expect(html).toContain("1,500/s / 1,200/s"); // offered peak, and the busiest second's answers
    expect(html).toContain("abc1234");
  });
});
