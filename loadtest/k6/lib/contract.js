import http from "k6/http";
import { check, sleep } from "k6";
import { Counter, Rate, Trend } from "k6/metrics";
import { signedHeaders, signature, ACQUIRER_HEADER, SIGNATURE_HEADER } from "./sign.js";
import { bodyJson } from "./canonical.js";

// One callback, sent and checked against docs/callback-contract.md: status, body fields, and for a
// grant the tier's own discount and payableFen = amountFen - discountFen. Custom metrics carry
// bounded tags only (outcome, reason, tier): never payer or txn ids.

/** @typedef {import("./payments.js").PaymentBody} PaymentBody */
/** @typedef {{ id: string, thresholdFen: number, discountFen: number }} Tier */
/** @typedef {{ id: string, merchants: string[], tiers: Tier[] }} Activity */
/** @typedef {{ id: string, activities: Activity[] }} Campaign */

export const answers = new Counter("quanta_answers");
export const granted = new Counter("quanta_granted");
export const overloaded = new Rate("quanta_overloaded");
export const pending = new Rate("quanta_pending");
export const contractOk = new Rate("quanta_contract_ok");
export const ackMs = new Trend("quanta_ack_ms", true);
/** A 5xx other than 503 overloaded: the contract has none. */
export const unexpected5xx = new Rate("quanta_unexpected_5xx");
/** A body that is none of the contract's answers (a decision, pending, or {error:{code}}). */
export const unknownShape = new Rate("quanta_unknown_answer_shape");

const REASONS = [
  "below_threshold",
  "merchant_not_eligible",
  "outside_window",
  "activity_paused",
  "already_redeemed",
  "sold_out",
  "budget_exhausted",
];
const ERROR_STATUS = {
  400: "invalid_body",
  401: "",
  404: "unknown_txn",
  409: "txn_conflict",
  413: "body_too_large",
  415: "unsupported_media_type",
  503: "overloaded",
};

/**
 * @param {Campaign} campaign
 * @returns {Map<string, Tier & { activityId: string }>}
 */
export function tierIndex(campaign) {
  const index = new Map();
  for (const a of campaign.activities)
    for (const t of a.tiers) index.set(t.id, Object.assign({}, t, { activityId: a.id }));
  return index;
}

/**
 * @typedef {{
 *   baseUrl: string, acquirerId: string, secret: string,
 *   tiers: Map<string, Tier & { activityId: string }>,
 * }} Target
 * @typedef {"payment" | "resend" | "conflict" | "forged" | "stale"} SendKind
 */

/** @param {SendKind} kind */
function expectedStatuses(kind) {
  if (kind === "forged" || kind === "stale") return http.expectedStatuses(401);
  if (kind === "conflict") return http.expectedStatuses(200, 202, 409);
  return http.expectedStatuses(200, 202);
}

/**
 * Posts one payment callback and checks the answer. Returns the parsed answer.
 * @param {Target} target
 * @param {PaymentBody} body
 * @param {SendKind} kind
 */
export function postPayment(target, body, kind) {
  const raw = JSON.stringify(body);
  const secret = kind === "forged" ? `${target.secret}-forged` : target.secret;
  const t = kind === "stale" ? Math.floor(Date.now() / 1000) - 3600 : undefined;
  const res = http.post(`${target.baseUrl}/v1/callbacks/payment`, raw, {
    headers: signedHeaders(target.acquirerId, secret, raw, t),
    tags: { name: "callback", kind },
    responseCallback: expectedStatuses(kind),
  });
  return judge(target, res, body, kind);
}

/**
 * Asks for a stored decision (GET /v1/attempts/{txnId}).
 * @param {Target} target
 * @param {string} txnId
 */
export function getAttempt(target, txnId) {
  const path = `/v1/attempts/${txnId}`;
  return http.get(`${target.baseUrl}${path}`, {
    headers: { [ACQUIRER_HEADER]: target.acquirerId, [SIGNATURE_HEADER]: signature(target.secret, `GET ${path}`) },
    tags: { name: "attempt" },
    responseCallback: http.expectedStatuses(200, 202, 404),
  });
}

/**
 * The decision behind a callback's answer: the answer itself unless it is 202 pending, else GET
 * /v1/attempts/{txnId} until the attempt is decided, as an acquirer would: at most pollsMax times,
 * pausing pauseS, 2 x pauseS, ... between asks. Returns the last answer: still a 202 when no
 * decision came within the polls, which the caller's check must count as a broken promise.
 * @param {Target} target
 * @param {string} txnId
 * @param {{ status: number, answer: any }} first
 * @param {{ pollsMax?: number, pauseS?: number }} [limits]
 */
export function awaitDecision(target, txnId, first, limits = {}) {
  const pollsMax = limits.pollsMax ?? 8;
  const pauseS = limits.pauseS ?? 0.25;
  let last = first;
  for (let i = 0; i < pollsMax && last.status === 202; i++) {
    sleep(pauseS * (i + 1));
    const res = getAttempt(target, txnId);
    last = { status: res.status, answer: bodyJson(res) };
  }
  return last;
}

/**
 * @param {Target} target
 * @param {import("k6/http").RefinedResponse<any>} res
 * @param {PaymentBody} sent
 * @param {SendKind} kind
 */
function judge(target, res, sent, kind) {
  /** @type {any} */
  const answer = bodyJson(res);
  const status = res.status;
  let outcome = "error";
  let reason = "";
  let tier = "";
  if (status === 200 && answer) {
    outcome = answer.status;
    reason = answer.reason ?? "";
    tier = answer.tierId ?? "";
  } else if (status === 202) outcome = "pending";
  else if (status === 0) reason = "network";
  else reason = String(status);

  /** @type {Record<string, (r: any) => boolean>} */
  const checks = {};
  if (kind === "forged" || kind === "stale") {
    checks["forged or stale: 401 with an error code"] = () =>
      status === 401 && answer?.error?.code === (kind === "forged" ? "bad_signature" : "stale_timestamp");
  } else if (status === 200) {
    checks["200: the txnId sent"] = () => answer?.txnId === sent.txnId;
    if (answer?.status === "granted") {
      checks["granted: the tier's discount, payable = amount - discount"] = () => {
        const t = target.tiers.get(answer.tierId);
        return (
          t !== undefined &&
          answer.activityId === t.activityId &&
          answer.discountFen === t.discountFen &&
          answer.payableFen === sent.amountFen - t.discountFen &&
          sent.amountFen >= t.thresholdFen
        );
      };
    } else {
      checks["rejected: a contract reason"] = () => answer?.status === "rejected" && REASONS.includes(answer.reason);
    }
  } else if (status === 202) {
    checks["202: pending with a location"] = () =>
      answer?.status === "pending" && res.headers["Location"] === `/v1/attempts/${sent.txnId}`;
  } else if (status === 409) {
    checks["409 only for a conflicting body"] = () => kind === "conflict" && answer?.error?.code === "txn_conflict";
  } else if (status === 503) {
    checks["503: overloaded with retry-after"] = () =>
      answer?.error?.code === "overloaded" && res.headers["Retry-After"] !== undefined;
  } else {
    checks[
      `unexpected status ${status} (${ERROR_STATUS[/** @type {keyof typeof ERROR_STATUS} */ (status)] ?? "not in the contract"})`
    ] = () => false;
  }
  const ok = check(res, checks, { outcome });
  contractOk.add(ok);
  unexpected5xx.add(status >= 500 && status !== 503);
  unknownShape.add(status !== 0 && !knownShape(status, answer));
  answers.add(1, { outcome, reason, tier });
  if (outcome === "granted") granted.add(1, { tier });
  overloaded.add(status === 503);
  pending.add(status === 202);
  ackMs.add(res.timings.duration, { outcome });
  return { status, answer };
}

/** Whether a body is one of the contract's answer shapes for its status. @param {number} status @param {any} a */
function knownShape(status, a) {
  if (a === null || typeof a !== "object") return false;
  if (status === 200) {
    if (typeof a.txnId !== "string") return false;
    if (a.status === "granted")
      return (
        ["activityId", "tierId"].every((k) => typeof a[k] === "string") &&
        ["discountFen", "payableFen"].every((k) => Number.isInteger(a[k]))
      );
    return a.status === "rejected" && typeof a.reason === "string";
  }
  if (status === 202) return a.status === "pending" && typeof a.txnId === "string";
  return a.error !== undefined && typeof a.error.code === "string";
}

export const refunds = new Counter("quanta_refunds");
export const refundContractOk = new Rate("quanta_refund_contract_ok");
const REFUND_OUTCOMES = ["voucher_returned", "voucher_kept", "no_voucher"];

/**
 * Refunds a granted payment (POST /v1/callbacks/refund), sends the same refund again as an
 * acquirer's retry would, and checks both answers against the contract: the outcome the partial
 * refund rule gives, the fields, and the same answer twice.
 * @param {Target} target
 * @param {PaymentBody} paid the payment as sent
 * @param {{ tierId: string }} grant its 200 granted answer
 * @param {"full" | "partial"} kind full, or what keeps the payment at its tier's threshold
 */
export function postRefund(target, paid, grant, kind) {
  const tier = target.tiers.get(grant.tierId);
  const slack = paid.amountFen - (tier?.thresholdFen ?? paid.amountFen);
  const partial = kind === "partial" && slack >= 1;
  const body = {
    refundId: `rf-${paid.txnId}`,
    txnId: paid.txnId,
    amountFen: partial ? slack : paid.amountFen,
    refundedAt: new Date().toISOString(),
  };
  const raw = JSON.stringify(body);
  const send = () =>
    http.post(`${target.baseUrl}/v1/callbacks/refund`, raw, {
      headers: signedHeaders(target.acquirerId, target.secret, raw),
      tags: { name: "refund" },
      responseCallback: http.expectedStatuses(200),
    });
  const first = send();
  const again = send();
  /** @type {any} */
  const answer = bodyJson(first);
  const expected = partial ? "voucher_kept" : "voucher_returned";
  const ok = check(first, {
    "refund: 200 with the outcome the partial-refund rule gives": () =>
      first.status === 200 && answer?.status === expected,
    "refund: the ids and totals sent": () =>
      answer?.refundId === body.refundId && answer?.txnId === body.txnId && answer?.refundedTotalFen === body.amountFen,
    "refund: the tier's discount comes back with the voucher": () =>
      expected !== "voucher_returned" ||
      (answer?.tierId === grant.tierId && answer?.discountReturnedFen === tier?.discountFen),
    "refund: a retry gets the same answer": () => again.status === first.status && again.body === first.body,
  });
  refundContractOk.add(ok);
  refunds.add(1, { outcome: REFUND_OUTCOMES.includes(answer?.status) ? answer.status : "error" });
}
