// Configuration from __ENV, read once in the init context. Every script takes the same names,
// so one shell profile drives smoke, rush, spike, soak and breakpoint against any deployment.
//
//   BASE_URL         ingress base URL                        (default http://127.0.0.1:8080)
//   ACQUIRER_ID      acquirer id the ingress knows           (required)
//   ACQUIRER_SECRET  that acquirer's HMAC secret             (required)
//   RUN_ID           prefix of every txnId of this run       (default: k6-<start time, base 36>)
//   SCALE            multiplies every arrival rate            (default 1; 10 turns the county into a city)
//   PAYERS           payer population                        (default: the scenario's)
//   ACK_P99_MS       threshold on answer p99                 (default 100)
//   MAX_VUS          cap on concurrent requests in flight    (default 2000)
//   BUDGETS          gate: latency, 503, 202 and dropped-arrival budgets fail the run (default);
//                    report: they are reported only (lib/thresholds.js says which is which)
//
// Script-specific knobs (RATE, DURATION, ...) are listed at the top of each script.

/** @param {string} name @param {string} fallback */
export function env(name, fallback) {
  const value = __ENV[name];
  return value === undefined || value === "" ? fallback : value;
}

/** @param {string} name @param {number} fallback */
export function envNumber(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${raw} is not a non-negative number`);
  return n;
}

/** @param {string} name */
export function required(name) {
  const value = __ENV[name];
  if (value === undefined || value === "") throw new Error(`${name} is required (see loadtest/README.md)`);
  return value;
}

export const config = {
  baseUrl: env("BASE_URL", "http://127.0.0.1:8080").replace(/\/+$/, ""),
  acquirerId: required("ACQUIRER_ID"),
  secret: required("ACQUIRER_SECRET"),
  runId: env("RUN_ID", `k6-${Date.now().toString(36)}`),
  scale: envNumber("SCALE", 1),
  ackP99Ms: envNumber("ACK_P99_MS", 100),
  maxVus: envNumber("MAX_VUS", 2000),
  budgets: budgetMode(env("BUDGETS", "gate")),
};

/** @param {string} raw @returns {"gate" | "report"} */
function budgetMode(raw) {
  if (raw === "gate" || raw === "report") return raw;
  throw new Error(`BUDGETS=${raw}: gate (budgets fail the run) or report (budgets are only reported)`);
}
