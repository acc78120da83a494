import { describe, expect, it } from "vitest";
import { lineChartSvg, logRange, logTicks, niceTicks, remainingSeries, rushHtml, type RushSeries } from "./rush-html.js";

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
    const svg = lineChartSvg("t", "u", { granted: [1_500, 2_500], late: [null, null, 7], error: [0, 1, 0] }, { integer: true });
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
    const axes = [...html.matchAll(/aria-label="(Answer|Decision) latency[^"]*"[\s\S]*?<\/svg>/g)].map((m) => [...m[0].matchAll(/text-anchor="end">([\d,]+)<\/text>/g)].map((t) => t[1]));
    expect(axes).toHaveLength(2);
    expect(axes[0]).toEqual(axes[1]);
    expect(axes[0]).toEqual(["1", "2", "5", "10", "20", "50", "100", "200", "500", "1,000"]);
  });
});
