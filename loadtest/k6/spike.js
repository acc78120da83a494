// Sudden bursts: a steady base rate, then SPIKES times a jump to SPIKE_FACTOR x the base within
// two seconds, held for SPIKE_HOLD_S, and back. The question is whether quanta sheds load cleanly
// (503 overloaded with retry-after, never a lost or doubled decision) and recovers at once.
//
//   RATE (base arrivals/s, default 50), SPIKE_FACTOR (10), SPIKES (3), SPIKE_HOLD_S (10), CALM_S (30)
//   k6 run -e ACQUIRER_ID=acq-demo -e ACQUIRER_SECRET=... -e RATE=100 loadtest/k6/spike.js
import { parseScenario } from "./lib/scenario.js";
import { paymentIteration } from "./lib/iteration.js";
import { target } from "./lib/target.js";
import { config, env, envNumber } from "./lib/config.js";
import { budgets, thresholds, SUMMARY_TREND_STATS } from "./lib/thresholds.js";
import { report } from "./lib/summary.js";

const scenario = parseScenario(open(env("SCENARIO", "../scenarios/rush-0913.json")));
const seed = target(open("../../campaigns/qianan-2020-b2.json"));
const base = Math.max(1, Math.round(envNumber("RATE", 50) * config.scale));
const factor = envNumber("SPIKE_FACTOR", 10);
const spikes = envNumber("SPIKES", 3);
const holdS = envNumber("SPIKE_HOLD_S", 10);
const calmS = envNumber("CALM_S", 30);
// A burst may be shed (503) by design, but only a small share of it (OVERLOADED_MAX, 5 %). Answer
// p99 250 ms (ACK_P99_MS): a tenfold jump queues work for a few hundred ms before the batches grow
// to meet it; more than that is not a spike absorbed but an outage.
const inForce = budgets({ overloadedMax: envNumber("OVERLOADED_MAX", 0.05), ackP99Ms: envNumber("ACK_P99_MS", 250) });

/** @type {{ duration: string, target: number }[]} */
const stages = [
  { duration: "5s", target: base },
  { duration: `${calmS}s`, target: base },
];
for (let i = 0; i < spikes; i++) {
  stages.push({ duration: "2s", target: Math.round(base * factor) });
  stages.push({ duration: `${holdS}s`, target: Math.round(base * factor) });
  stages.push({ duration: "2s", target: base });
  stages.push({ duration: `${calmS}s`, target: base });
}

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    spike: {
      executor: "ramping-arrival-rate",
      startRate: 0,
      timeUnit: "1s",
      stages,
      preAllocatedVUs: Math.min(config.maxVus, Math.max(10, Math.ceil(base * factor * 0.2))),
      maxVUs: config.maxVus,
      gracefulStop: "10s",
    },
  },
  thresholds: thresholds(inForce),
  summaryTrendStats: SUMMARY_TREND_STATS,
};

const iterate = paymentIteration(scenario, seed, { seed: 20200914, payers: scenario.payers });

export default function () {
  iterate();
}

/** @param {any} data */
export function handleSummary(data) {
  return report(data, "spike", {
    budgets: inForce,
    extra: [`Base ${base}/s, ${spikes} spikes to ${Math.round(base * factor)}/s for ${holdS} s each.`],
  });
}
