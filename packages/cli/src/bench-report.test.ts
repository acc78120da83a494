import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { summarize } from "./bench-report.js";
import type { StepResult, SystemName } from "./bench.js";

function step(system: SystemName, rep: number, offeredPerS: number, sustained: boolean, services: number): StepResult {
  return {
    system,
    rep,
    offeredPerS,
    sent: offeredPerS * 10,
    answered: offeredPerS * 10,
    dropped: 0,
    errors: 0,
    errorStatuses: {},
    achievedPerS: offeredPerS,
    ackMs: { p50: 1, p99: sustained ? 10 : 500, p999: 20 },
    share200: 1,
    share202: 0,
    redisCpuUsPerAttempt: 5,
    redisCommandsPerAttempt: 2,
    redisMemory: { beforeBytes: 1, peakBytes: 1, afterBytes: 1 },
    pgCommitsPerAttempt: 0.05,
    walBytesPerAttempt: 500,
    rssPeakMiB: { [system]: 100 },
    cpuUsPerAttempt: { services, postgres: 100, redis: 5, driver: 95 },
    invariantsOk: system === "floor" ? null : true,
    invariantProblems: [],
    sustained,
    why: sustained ? "" : "p99 500 ms",
  };
}

describe("bench report", () => {
  it("puts each system's CPU per attempt at its own maximum sustained rate, and the rate that would fill the cores", () => {
    const results = [1, 2, 3].flatMap((rep) => [
      step("quanta", rep, 1000, true, 400),
      step("quanta", rep, 2000, true, 300),
      step("quanta", rep, 3000, false, 250),
      step("floor", rep, 1000, true, 90),
      step("floor", rep, 2000, true, 80),
    ]);
    const { markdown } = summarize(results, ["quanta", "floor"], "test box");
    const cores = availableParallelism();
    // quanta at 2,000/s: 300 + 100 + 5 + 95 = 500 µs; floor at 2,000/s: 80 + 100 + 5 + 95 = 280 µs.
    const fill = (us: number) => ((cores * 1e6) / us).toLocaleString("en-US", { maximumFractionDigits: 0 });
    expect(markdown).toContain(`| quanta | 2,000 | 300 | 100 | 5 | 95 | 500 | ${fill(500)}/s |`);
    expect(markdown).toContain(`| floor | 2,000 | 80 | 100 | 5 | 95 | 280 | ${fill(280)}/s |`);
    // And the per-rate table carries the total at every rate, the unsustained one included.
    expect(markdown).toMatch(/\| quanta \| 3,000 \|[^\n]*\| 450 \| 100 \|/);
  });

  it("takes the rung below when the median of an even number of repetitions falls between two", () => {
    // Maximum sustained 2,000 and 3,000/s: median 2,500, not a rung; the table uses 2,000/s.
    const results = [
      step("quanta", 1, 2000, true, 300),
      step("quanta", 1, 3000, false, 250),
      step("quanta", 2, 2000, true, 300),
      step("quanta", 2, 3000, true, 250),
    ];
    const { markdown } = summarize(results, ["quanta"], "test box");
    expect(markdown).toContain("| quanta | 2,000 | 300 | 100 | 5 | 95 | 500 |");
  });

  it("names the processes the system's share is spent in", () => {
    const withProcesses = (r: StepResult, ingress: number): StepResult => ({
      ...r,
      cpuUsPerAttemptByProcess: { ingress, "worker-1": 10, "worker-2": 20 },
    });
    const results = [1, 2, 3].flatMap((rep) => [
      withProcesses(step("quanta", rep, 1000, true, 300), 260 + rep),
      withProcesses(step("quanta", rep, 2000, false, 250), 1),
    ]);
    const { markdown } = summarize(results, ["quanta"], "test box");
    expect(markdown).toContain("| quanta | 1,000 | 300 (ingress 262, worker-1 10, worker-2 20) | 100 |");
  });

  it("says when a system held the ladder's top rung, and that a ratio against it is an upper bound", () => {
    const results = [1, 2, 3].flatMap((rep) => [
      step("quanta", rep, 1000, true, 300),
      step("quanta", rep, 2000, false, 250),
      step("floor", rep, 1000, true, 90),
      step("floor", rep, 2000, true, 80),
    ]);
    const { markdown } = summarize(results, ["quanta", "floor"], "test box");
    expect(markdown).toContain("| floor | 2000, 2000, 2000 | 2,000 (the ladder's top: its maximum is higher) |");
    expect(markdown).toContain("| quanta | 1000, 1000, 1000 | 1,000 |");
    expect(markdown).toMatch(/\| quanta \/ floor \| at most 0\.50 \|/);
  });

  it("tells a median below the top from a repetition that held it", () => {
    const results = [
      ...[1, 2, 3].map((rep) => step("quanta", rep, 1000, true, 300)),
      ...[1, 2, 3].map((rep) => step("quanta", rep, 2000, false, 250)),
      ...[1, 2, 3].map((rep) => step("floor", rep, 1000, true, 90)),
      step("floor", 1, 2000, true, 80),
      step("floor", 2, 2000, false, 80),
      step("floor", 3, 2000, false, 80),
    ];
    const { markdown } = summarize(results, ["quanta", "floor"], "test box");
    expect(markdown).toContain("| floor | 2000, 1000, 1000 | 1,000 (1 of 3 repetitions held the ladder's top) |");
    expect(markdown).toMatch(/\| quanta \/ floor \| 1\.00 \|/);
  });
});
