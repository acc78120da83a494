import { config } from "./config.js";

// Thresholds every load script shares, in two kinds.
//
//   promises: what the contract promises whatever the load (answers keep the contract, a resend
//     gets its first answer, another body 409, no 5xx but 503). One broken is a defect: k6 exits 99.
//   budgets: what the deployment should manage on its hardware (answer p99, 503 and 202 shares,
//     arrivals the load generator could not send). BUDGETS=gate (default) makes them thresholds
//     too, so a rehearsal stops on them; BUDGETS=report keeps them out of k6's verdict and only
//     reports them, for a run whose machine is not the one being judged (CI on a shared box). The
//     summary says which budgets were over either way.
//
// The report-only entries (count>=0) never fail: they make k6 keep the per-outcome and per-tier
// sub-metrics so that handleSummary can print them.

export const OUTCOMES = ["granted", "rejected", "pending", "error"];
export const TIERS = ["A1-100", "A2-20", "A2-50", "A2-100", "A2-200", "A2-400"];

/**
 * One budget: a k6 threshold expression on one metric, and how the summary reads the figure.
 * @typedef {{ metric: string, stat: string, op: "<", limit: number, what: string, unit: string, scale: number, keep: string }} Budget
 */

/**
 * The budgets of a script, each script saying why its bounds are what they are.
 * @param {{ ackP99Ms?: number, overloadedMax?: number, pendingMax?: number }} [over]
 *   ackP99Ms: answer p99 (default config.ackP99Ms, ACK_P99_MS); overloadedMax and pendingMax: shares.
 * @returns {Budget[]}
 */
export function budgets(over = {}) {
  return [
    // Answer latency of the callback route, as the acquirer's till sees it.
    {
      metric: "http_req_duration{name:callback}",
      stat: "p(99)",
      op: "<",
      limit: over.ackP99Ms ?? config.ackP99Ms,
      what: "answer p99",
      unit: " ms",
      scale: 1,
      keep: "max>=0",
    },
    // 503 overloaded: the bound on the backlog said no.
    {
      metric: "quanta_overloaded",
      stat: "rate",
      op: "<",
      limit: over.overloadedMax ?? 0.01,
      what: "503 overloaded",
      unit: " %",
      scale: 100,
      keep: "rate>=0",
    },
    // 202 pending: the decision took longer than the ingress holds a callback open.
    {
      metric: "quanta_pending",
      stat: "rate",
      op: "<",
      limit: over.pendingMax ?? 0.01,
      what: "202 pending",
      unit: " %",
      scale: 100,
      keep: "rate>=0",
    },
    // Arrivals k6 could not start because every VU was busy: the offered load was not offered.
    {
      metric: "dropped_iterations",
      stat: "count",
      op: "<",
      limit: 1,
      what: "dropped arrivals",
      unit: "",
      scale: 1,
      keep: "count>=0",
    },
  ];
}

/**
 * @param {Budget[]} inForce the script's budgets (budgets())
 * @param {{ abortOnFail?: boolean }} [opts] abortOnFail: a budget over for 10 s stops the run (breakpoint)
 * @returns {Record<string, any[]>}
 */
export function thresholds(inForce, opts = {}) {
  const abort = opts.abortOnFail ?? false;
  /** @type {Record<string, any[]>} */
  const t = {
    // Requests that failed at the HTTP level: network errors and statuses the script did not expect.
    http_req_failed: [{ threshold: "rate<0.01", abortOnFail: abort, delayAbortEval: "10s" }],
    // Answers that broke the contract (wrong fields, wrong payable, an unexpected status).
    quanta_contract_ok: ["rate>0.999"],
    // The contract has one 5xx, 503 overloaded (nothing accepted); any other is a bug.
    quanta_unexpected_5xx: ["rate==0"],
    // Every body is one of the contract's answers: a decision, pending, or {error: {code}}.
    quanta_unknown_answer_shape: ["rate==0"],
    // I4 from outside: a resend of an acknowledged txn gets its first answer, another body 409.
    quanta_resend_same_answer: ["rate==1"],
    quanta_conflict_409: ["rate==1"],
  };
  for (const b of inForce) {
    t[b.metric] =
      config.budgets === "gate"
        ? [{ threshold: `${b.stat}${b.op}${b.limit}`, abortOnFail: abort, delayAbortEval: "10s" }]
        : [b.keep];
  }
  t["http_reqs{name:callback}"] = ["count>=0"];
  for (const o of OUTCOMES) t[`quanta_answers{outcome:${o}}`] = ["count>=0"];
  for (const tier of TIERS) t[`quanta_granted{tier:${tier}}`] = ["count>=0"];
  return t;
}

export const SUMMARY_TREND_STATS = ["avg", "min", "med", "p(90)", "p(99)", "p(99.9)", "max"];
