// Rising arrival rate until a budget is over: where does this deployment stop keeping up (answer
// p99, failures, 503s, 202s, dropped arrivals)? k6 aborts the run at the first failed threshold
// (after a 10 s grace) and the report names the offered rate at that moment. A promise broken on
// the way (the contract, resends, 409s) is a defect, not a breakpoint (lib/thresholds.js).
//
//   START_RATE (default 100/s), MAX_RATE (default 5000/s), DURATION (default 10m)
//   k6 run -e ACQUIRER_ID=acq-demo -e ACQUIRER_SECRET=... -e MAX_RATE=3000 loadtest/k6/breakpoint.js
import { parseScenario } from "./lib/scenario.js";
import { paymentIteration } from "./lib/iteration.js";
import { target } from "./lib/target.js";
import { config, env, envNumber } from "./lib/config.js";
import { budgets, thresholds, SUMMARY_TREND_STATS } from "./lib/thresholds.js";
import { report } from "./lib/summary.js";

const scenario = parseScenario(open(env("SCENARIO", "../scenarios/rush-0913.json")));
const seed = target(open("../../campaigns/qianan-2020-b2.json"));
const startRate = Math.max(1, Math.round(envNumber("START_RATE", 100) * config.scale));
const maxRate = Math.max(startRate, Math.round(envNumber("MAX_RATE", 5000) * config.scale));
const duration = env("DURATION", "10m");
const inForce = budgets();

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    breakpoint: {
      executor: "ramping-arrival-rate",
      startRate,
      timeUnit: "1s",
      stages: [{ duration, target: maxRate }],
      // As the other scripts: 0.2 s of arrivals at the rate the ramp ends on. A VU that k6 has to
      // start mid-run costs arrivals while it initialises (dropped_iterations, which would stop
      // the run on the load generator's account, not the deployment's).
      preAllocatedVUs: Math.min(config.maxVus, Math.max(100, Math.ceil(maxRate * 0.2))),
      maxVUs: config.maxVus,
    },
  },
  // The breakpoint is where a budget is first over (k6 judges from 10 s on): answer p99 over 100 ms (ACK_P99_MS,
  // the till's budget), failures, 503s, 202s or dropped arrivals. k6 then stops the run (exit code
  // 99), which is this script's result, not a failure: npm run k6 exits 0 on it when every promise
  // held. With BUDGETS=report nothing stops the ramp and the run ends at MAX_RATE.
  thresholds: thresholds(inForce, { abortOnFail: true }),
  summaryTrendStats: SUMMARY_TREND_STATS,
};

const iterate = paymentIteration(scenario, seed, { seed: 20200916, payers: 10000000 });

export default function () {
  iterate();
}

/** Seconds in a k6 duration string such as "10m", "90s" or "1h30m". @param {string} d */
function seconds(d) {
  let total = 0;
  for (const [, n, unit] of d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g))
    total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[/** @type {"ms"|"s"|"m"|"h"} */ (unit)];
  return total;
}

/** @param {any} data */
export function handleSummary(data) {
  const elapsedS = data.state.testRunDurationMs / 1000;
  const reached = Math.round(startRate + (maxRate - startRate) * Math.min(1, elapsedS / seconds(duration)));
  const ended = elapsedS < seconds(duration) - 1 ? "a budget was over" : "the ramp reached MAX_RATE";
  return report(data, "breakpoint", {
    budgets: inForce,
    budgetOverIsResult: true,
    extra: [
      `Offered rate when the run ended (${ended}): about ${reached}/s (ramp ${startRate} -> ${maxRate}/s over ${duration}).`,
    ],
  });
}
