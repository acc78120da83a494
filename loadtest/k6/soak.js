// Hours at a steady rate with returning payers: the eighteen days after the opening, compressed.
// A small payer population makes people come back (already_redeemed) and, once stock is gone,
// every answer is sold_out from the ingress. Any 202 is followed up by GET until decided, so a
// lost decision (I3) shows as a failed check. A share of the granted payments is refunded (full or
// partial, alternately, each refund sent twice), so the refund path and the vouchers it returns
// to stock are exercised for hours too. Watch RSS, Redis memory and Postgres size in Grafana
// while it runs (loadtest/README.md).
//
//   RATE (arrivals/s, default 100), DURATION (default 2h), PAYERS (default 50000),
//   REFUND_SHARE (share of grants refunded, default 0.02)
//   k6 run -e ACQUIRER_ID=acq-demo -e ACQUIRER_SECRET=... -e DURATION=8h loadtest/k6/soak.js
import { check } from "k6";
import { parseScenario } from "./lib/scenario.js";
import { awaitDecision, postRefund } from "./lib/contract.js";
import { paymentIteration } from "./lib/iteration.js";
import { target } from "./lib/target.js";
import { config, env, envNumber } from "./lib/config.js";
import { budgets, thresholds, SUMMARY_TREND_STATS } from "./lib/thresholds.js";
import { report } from "./lib/summary.js";

const scenario = parseScenario(open(env("SCENARIO", "../scenarios/rush-0913.json")));
const seed = target(open("../../campaigns/qianan-2020-b2.json"));
const rate = Math.max(1, Math.round(envNumber("RATE", 100) * config.scale));
const duration = env("DURATION", "2h");
const POLLS_MAX = 10;
const refundShare = Math.min(1, Math.max(0, envNumber("REFUND_SHARE", 0.02)));
// Answer p99 100 ms (ACK_P99_MS) at a steady rate far below capacity: hours of it must look like
// its first minute (a slow leak shows as a rising p99 long before anything fails).
const inForce = budgets();
let refundsSent = 0;

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: {
    soak: {
      executor: "constant-arrival-rate",
      rate,
      timeUnit: "1s",
      duration,
      preAllocatedVUs: Math.min(config.maxVus, Math.max(10, Math.ceil(rate * 0.2))),
      maxVUs: config.maxVus,
      gracefulStop: "30s",
    },
  },
  thresholds: Object.assign(thresholds(inForce), {
    "checks{kind:follow-up}": ["rate==1"],
    // Refund answers that broke the contract (outcome, fields, a retry answered differently).
    quanta_refund_contract_ok: ["rate>0.999"],
    "quanta_refunds{outcome:voucher_returned}": ["count>=0"],
    "quanta_refunds{outcome:voucher_kept}": ["count>=0"],
  }),
  summaryTrendStats: SUMMARY_TREND_STATS,
};

const iterate = paymentIteration(scenario, seed, { seed: 20200915, payers: 50000 });

export default function () {
  const { arrival, answer: first } = iterate();
  if (
    first.status === 200 &&
    first.answer?.status === "granted" &&
    arrival.kind === "payment" &&
    Math.random() < refundShare
  ) {
    postRefund(seed, arrival.body, first.answer, refundsSent++ % 2 === 0 ? "full" : "partial");
    return;
  }
  if (first.status !== 202) return;
  // A pending answer must turn into a decision: poll as an acquirer would, with a bound.
  const last = awaitDecision(seed, arrival.body.txnId, first, { pollsMax: POLLS_MAX, pauseS: 0.5 });
  check(last, { "a pending attempt is decided": (r) => r.status === 200 }, { kind: "follow-up" });
}

/** @param {any} data */
export function handleSummary(data) {
  return report(data, "soak", {
    budgets: inForce,
    extra: [
      `${rate}/s for ${duration}, ${envNumber("PAYERS", 50000)} payers, ${refundShare * 100} % of grants refunded.`,
    ],
  });
}
