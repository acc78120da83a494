// Rising arrival rate until a threshold fails: where does this deployment stop keeping its
// promises (answer p99, failures, 503s, dropped arrivals)? k6 aborts the run at the first failed
// threshold (after a 10 s grace) and the report names the offered rate at that moment.
//
//   START_RATE (default 100/s), MAX_RATE (default 5000/s), DURATION (default 10m)
//   k6 run -e ACQUIRER_ID=acq-demo -e ACQUIRER_SECRET=... -e MAX_RATE=3000 loadtest/k6/breakpoint.js
import { parseScenario } from "./lib/scenario.js";
import { paymentIteration } from "./lib/iteration.js";
import { target } from "./lib/target.js";
import { config, env, envNumber } from "./lib/config.js";
import { thresholds, SUMMARY_TREND_STATS } from "./lib/thresholds.js";
import { report } from "./lib/summary.js";

const scenario = parseScenario(open(env("SCENARIO", "../scenarios/rush-0913.json")));
const seed = target(open("../../campaigns/qianan-2020-b2.json"));
const startRate = Math.max(1, Math.round(envNumber("START_RATE", 100) * config.scale));
const maxRate = Math.max(startRate, Math.round(envNumber("MAX_RATE", 5000) * config.scale));
const duration = env("DURATION", "10m");

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    breakpoint: {
      executor: "ramping-arrival-rate",
      startRate,
      timeUnit: "1s",
      stages: [{ duration, target: maxRate }],
      preAllocatedVUs: Math.min(config.maxVus, 100),
      maxVUs: config.maxVus,
    },
  },
  // The breakpoint is where one of these first fails for 10 s: answer p99 over 100 ms (ACK_P99_MS,
  // the till's budget), failures, 503s or dropped arrivals. k6 then stops the run (exit code 99).
  thresholds: thresholds({ abortOnFail: true }),
  summaryTrendStats: SUMMARY_TREND_STATS,
};

const iterate = paymentIteration(scenario, seed, { seed: 20200916, payers: 10000000 });

export default function () {
  iterate();
}

/** Seconds in a k6 duration string such as "10m", "90s" or "1h30m". @param {string} d */
function seconds(d) {
  let total = 0;
  for (const [, n, unit] of d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[/** @type {"ms"|"s"|"m"|"h"} */ (unit)];
  return total;
}

/** @param {any} data */
export function handleSummary(data) {
  const elapsedS = data.state.testRunDurationMs / 1000;
  const reached = Math.round(startRate + ((maxRate - startRate) * Math.min(1, elapsedS / seconds(duration))));
  return report(data, "breakpoint", [`Offered rate when the run ended: about ${reached}/s (ramp ${startRate} -> ${maxRate}/s over ${duration}).`]);
}
