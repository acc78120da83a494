// The opening minute of 13 September 2020 (Qian'an county, second batch), as modelled in
// loadtest/scenarios/rush-0913.json: ramp, plateau, decay of new arrivals; payers drawn from the
// population (some pay twice); resends, conflicting bodies and forged signatures in the file's
// shares. Open model: arrivals keep coming whatever the server does.
//
//   k6 run -e ACQUIRER_ID=acq-demo -e ACQUIRER_SECRET=... loadtest/k6/rush-0913.js
//   SCALE=10 for a city-sized rehearsal; SCENARIO=path for another model (relative to this file).
import { parseScenario, rushStages, expectedArrivals } from "./lib/scenario.js";
import { paymentIteration } from "./lib/iteration.js";
import { target } from "./lib/target.js";
import { config, env, envNumber } from "./lib/config.js";
import { budgets, thresholds, SUMMARY_TREND_STATS } from "./lib/thresholds.js";
import { report } from "./lib/summary.js";

const scenario = parseScenario(open(env("SCENARIO", "../scenarios/rush-0913.json")));
const seed = target(open("../../campaigns/qianan-2020-b2.json"));
const peak = Math.round(scenario.arrival.peakRatePerS * config.scale);
// Answer p99 100 ms (ACK_P99_MS): the till waits for the answer while the payer stands there, and
// at the scenario's 500/s peak the whole path (queue, a worker's round, the answer) has room to spare.
const inForce = budgets();

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    rush: {
      executor: "ramping-arrival-rate",
      startRate: 0,
      timeUnit: "1s",
      stages: rushStages(scenario, config.scale),
      // Enough VUs for the peak at a few hundred ms per answer; more only when answers slow down.
      preAllocatedVUs: Math.min(config.maxVus, Math.max(10, Math.ceil(peak * 0.2))),
      maxVUs: config.maxVus,
      gracefulStop: "10s",
    },
  },
  thresholds: thresholds(inForce),
  summaryTrendStats: SUMMARY_TREND_STATS,
  tags: { scenario_file: scenario.name },
};

const iterate = paymentIteration(scenario, seed, { seed: 20200913, payers: scenario.payers });

export function setup() {
  console.log(
    `${scenario.name}: ${expectedArrivals(scenario, config.scale)} arrivals over ${scenario.durationS} s, peak ${peak}/s, against ${config.baseUrl}`,
  );
}

export default function () {
  iterate();
}

/** @param {any} data */
export function handleSummary(data) {
  return report(data, "rush-0913", { budgets: inForce });
}
