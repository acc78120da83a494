// A few callbacks of every kind, each answer checked against the contract (docs/callback-contract.md).
// Run it first against any deployment: one VU, one pass, about 15 requests, safe on a live campaign
// (it may take two vouchers, from payers named after RUN_ID).
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e ACQUIRER_ID=acq-demo -e ACQUIRER_SECRET=... loadtest/k6/smoke.js
import http from "k6/http";
import { check, group, sleep } from "k6";
import { config } from "./lib/config.js";
import { toOffsetIso } from "./lib/payments.js";
import { awaitDecision, getAttempt, postPayment } from "./lib/contract.js";
import { signedHeaders } from "./lib/sign.js";
import { target } from "./lib/target.js";
import { report } from "./lib/summary.js";
import { bodyJson, sameAnswer } from "./lib/canonical.js";

const seed = target(open("../../campaigns/qianan-2020-b2.json"));

/** @type {import("k6/options").Options} */
export const options = {
  scenarios: { smoke: { executor: "per-vu-iterations", vus: 1, iterations: 1, maxDuration: "1m" } },
  thresholds: { checks: ["rate==1"], quanta_contract_ok: ["rate==1"] },
};

/** @param {Partial<import("./lib/payments.js").PaymentBody>} over */
function payment(over) {
  const n = Math.floor(Math.random() * 1e9).toString(36);
  return Object.assign(
    {
      txnId: `${config.runId}-smoke-${n}`,
      payerId: `${config.runId}-payer-${n}`,
      merchantId: "M-0001",
      amountFen: 250000,
      paidAt: toOffsetIso(Date.parse("2020-09-13T10:00:00+08:00")),
    },
    over,
  );
}

export default function () {
  group("a grant, its resend, a conflicting body and the payer's second payment", () => {
    const first = payment({});
    // A 202 (not decided within the ingress's wait, as on a busy deployment) is followed to its decision.
    const a = awaitDecision(seed, first.txnId, postPayment(seed, first, "payment"));
    const grantedOrSoldOut = check(a, {
      "200 granted A2-400 (or sold_out when the campaign is already empty)": (r) =>
        r.status === 200 && (r.answer.tierId === "A2-400" || r.answer.reason === "sold_out"),
    });
    const again = postPayment(seed, first, "resend");
    check(again, { "a resend gets the same answer": (r) => r.status === a.status && sameAnswer(r.answer, a.answer) });
    const conflict = postPayment(seed, Object.assign({}, first, { amountFen: first.amountFen + 1 }), "conflict");
    check(conflict, { "another body for the txnId is 409 txn_conflict": (r) => r.status === 409 });
    if (grantedOrSoldOut && a.answer.status === "granted") {
      const paid = payment({ payerId: first.payerId, amountFen: 120000 });
      const second = awaitDecision(seed, paid.txnId, postPayment(seed, paid, "payment"));
      check(second, {
        "the payer's second payment is already_redeemed": (r) => r.answer?.reason === "already_redeemed",
      });
    }
    const stored = getAttempt(seed, first.txnId);
    check(stored, { "GET gives the same decision": (r) => r.status === 200 && sameAnswer(bodyJson(r), a.answer) });
  });

  group("refusals that need no stock", () => {
    check(postPayment(seed, payment({ amountFen: 5000 }), "payment"), {
      below_threshold: (r) => r.answer?.reason === "below_threshold",
    });
    check(postPayment(seed, payment({ merchantId: "M-NOT-LISTED" }), "payment"), {
      merchant_not_eligible: (r) => r.answer?.reason === "merchant_not_eligible",
    });
    check(postPayment(seed, payment({ paidAt: "2020-10-01T00:00:00+08:00" }), "payment"), {
      outside_window: (r) => r.answer?.reason === "outside_window",
    });
  });

  group("the flagship store (A1)", () => {
    const flagship = payment({ merchantId: "M-FLAGSHIP", amountFen: 30000 });
    check(awaitDecision(seed, flagship.txnId, postPayment(seed, flagship, "payment")), {
      "200 granted A1-100 (or sold_out)": (r) =>
        r.status === 200 && (r.answer.tierId === "A1-100" || r.answer.reason === "sold_out"),
    });
  });

  group("requests that must not be decided", () => {
    postPayment(seed, payment({}), "forged");
    postPayment(seed, payment({}), "stale");
    const raw = JSON.stringify(payment({}));
    const unknown = http.post(`${config.baseUrl}/v1/callbacks/payment`, raw, {
      headers: signedHeaders("acquirer-nobody-knows", config.secret, raw),
      responseCallback: http.expectedStatuses(401),
    });
    check(unknown, {
      "unknown acquirer is 401 unknown_acquirer": (r) =>
        r.status === 401 && r.json("error.code") === "unknown_acquirer",
    });
    const missing = JSON.stringify({
      txnId: `${config.runId}-smoke-bad`,
      payerId: "p",
      merchantId: "M-0001",
      paidAt: "2020-09-13T10:00:00+08:00",
    });
    const invalid = http.post(`${config.baseUrl}/v1/callbacks/payment`, missing, {
      headers: signedHeaders(config.acquirerId, config.secret, missing),
      responseCallback: http.expectedStatuses(400),
    });
    check(invalid, {
      "a body without amountFen is 400 invalid_body naming the field": (r) =>
        r.status === 400 && r.json("error.field") === "amountFen",
    });
    check(getAttempt(seed, `${config.runId}-never-sent`), {
      "GET of an unknown txn is 404 unknown_txn": (r) => r.status === 404,
    });
  });

  group("operations endpoints", () => {
    check(http.get(`${config.baseUrl}/readyz`), { "/readyz is 200": (r) => r.status === 200 });
    check(http.get(`${config.baseUrl}/metrics`), {
      "/metrics serves quanta_ metrics": (r) => r.status === 200 && String(r.body).includes("quanta_"),
    });
  });
  // A few idle seconds at the end (SMOKE_TAIL_S): k6's web dashboard skips the HTML report of a run
  // shorter than a few of its periods, and the pass itself takes a fraction of a second.
  sleep(Number(__ENV.SMOKE_TAIL_S || 3));
}

/** @param {any} data */
export function handleSummary(data) {
  return report(data, "smoke");
}
