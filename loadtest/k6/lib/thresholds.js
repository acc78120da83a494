import { config } from "./config.js";

// Thresholds every load script shares. A threshold that fails makes k6 exit non-zero (99), so a
// CI job or a rehearsal script can stop on it. The report-only entries (count>=0) never fail: they
// make k6 keep the per-outcome and per-tier sub-metrics so that handleSummary can print them.

export const OUTCOMES = ["granted", "rejected", "pending", "error"];
export const TIERS = ["A1-100", "A2-20", "A2-50", "A2-100", "A2-200", "A2-400"];

/**
 * @param {{ ackP99Ms?: number, overloadedMax?: number, pendingMax?: number, abortOnFail?: boolean }} [over]
 *   ackP99Ms: each script says why its bound is what it is (config.ackP99Ms, ACK_P99_MS, by default).
 * @returns {Record<string, any[]>}
 */
export function thresholds(over = {}) {
  const ackP99Ms = over.ackP99Ms ?? config.ackP99Ms;
  const abort = over.abortOnFail ?? false;
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
    // 503 overloaded: the bound on the backlog said no.
    quanta_overloaded: [{ threshold: `rate<${over.overloadedMax ?? 0.01}`, abortOnFail: abort, delayAbortEval: "10s" }],
    // 202 pending: the decision took longer than the ingress holds a callback open.
    quanta_pending: [`rate<${over.pendingMax ?? 0.01}`],
    // Answer latency of the callback route, as the acquirer's till sees it.
    "http_req_duration{name:callback}": [{ threshold: `p(99)<${ackP99Ms}`, abortOnFail: abort, delayAbortEval: "10s" }],
    // Arrivals k6 could not start because every VU was busy: the offered load was not offered.
    dropped_iterations: [{ threshold: "count<1", abortOnFail: abort, delayAbortEval: "10s" }],
  };
  t["http_reqs{name:callback}"] = ["count>=0"];
  for (const o of OUTCOMES) t[`quanta_answers{outcome:${o}}`] = ["count>=0"];
  for (const tier of TIERS) t[`quanta_granted{tier:${tier}}`] = ["count>=0"];
  return t;
}

export const SUMMARY_TREND_STATS = ["avg", "min", "med", "p(90)", "p(99)", "p(99.9)", "max"];
