import { describe, expect, it } from "vitest";
import { judge, type K6Verdict } from "./k6.js";

const p99Over = {
  metric: "http_req_duration{name:callback}",
  what: "answer p99",
  limit: 100,
  value: 157.9,
  text: "answer p99 157.9 ms (budget < 100.0 ms)",
};
const verdict = (over: Partial<K6Verdict>): K6Verdict => ({
  script: "rush-0913",
  budgets: "gate",
  budgetOverIsResult: false,
  promisesBroken: [],
  budgetsOver: [],
  ...over,
});

describe("judge (npm run k6's exit code)", () => {
  it("passes a run that kept every promise within every budget", () => {
    expect(judge(0, verdict({}))).toEqual({ exitCode: 0, text: "k6 exit 0 (every promise kept, every budget within)" });
  });

  it("fails a broken promise whatever the budgets say, and even for a breakpoint", () => {
    for (const v of [verdict({ budgets: "report" }), verdict({ budgetOverIsResult: true })]) {
      const j = judge(99, { ...v, promisesBroken: ["quanta_conflict_409"] });
      expect(j.exitCode).toBe(99);
      expect(j.text).toContain("PROMISES BROKEN: quanta_conflict_409");
    }
  });

  it("fails a budget over when budgets gate, and names it with its figure", () => {
    const j = judge(99, verdict({ budgetsOver: [p99Over] }));
    expect(j).toEqual({ exitCode: 99, text: "k6 exit 99: BUDGETS OVER: answer p99 157.9 ms (budget < 100.0 ms)" });
  });

  it("passes a budget over that is only reported (BUDGETS=report), saying it was over", () => {
    const j = judge(
      0,
      verdict({
        budgets: "report",
        budgetsOver: [
          {
            metric: "quanta_overloaded",
            what: "503 overloaded",
            limit: 0.01,
            value: 0.034,
            text: "503 overloaded 3.40 % (budget < 1.00 %)",
          },
        ],
      }),
    );
    expect(j).toEqual({
      exitCode: 0,
      text: "k6 exit 0 (every promise kept; budgets reported only, over: 503 overloaded 3.40 % (budget < 1.00 %))",
    });
  });

  it("takes a breakpoint's budget over, k6's abort, for the breakpoint found", () => {
    const j = judge(99, verdict({ script: "breakpoint", budgetOverIsResult: true, budgetsOver: [p99Over] }));
    expect(j.exitCode).toBe(0);
    expect(j.text).toContain("breakpoint found: answer p99 157.9 ms");
  });

  it("fails when k6 itself failed or wrote no verdict, even if every threshold held", () => {
    expect(judge(107, verdict({})).exitCode).toBe(107);
    expect(judge(0, undefined).exitCode).toBe(1);
    expect(judge(99, undefined).exitCode).toBe(99);
  });
});
