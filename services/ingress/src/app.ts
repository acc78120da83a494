import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { classify, partitionOf, type Campaign } from "@quanta/domain";
import {
  ACQUIRER_HEADER,
  SIGNATURE_HEADER,
  TXN_ID_PATTERN,
  attemptLocation,
  decisionBody,
  errorBody,
  parsePaymentBody,
  parseRefundBody,
  payerRef,
  paymentHash,
  refundHash,
  verifySignature,
  type ErrorCode,
  type PayerKey,
} from "@quanta/contract";
import {
  findAttempt,
  refundTx,
  rowDecision,
  withSettlingRetry,
  type DecisionRow,
  type Database,
  type SoldOutTiers,
} from "@quanta/db";
import { lookupTxn, type QuantaRedis } from "@quanta/queue";
import {
  attemptsAnswered,
  callbacksUnanswered,
  httpDuration,
  refundsAnswered,
  httpRequests,
  registerOpsRoutes,
  writesSettling,
  type Logger,
} from "@quanta/telemetry";
import { sql, type Kysely } from "kysely";
import type { DecisionWaiter } from "./decision-waiter.js";
import type { Intake, IntakeEntry } from "./intake.js";
import { refundAnswer } from "./refund-answer.js";

export const BODY_LIMIT_BYTES = 16 * 1024;

export interface IngressDeps {
  db: Kysely<Database>;
  redis: QuantaRedis;
  secrets: ReadonlyMap<string, string>;
  /** Payer ids are replaced by their pseudonym under this key before anything else sees them. */
  payerKey: PayerKey;
  campaigns: () => readonly Campaign[];
  soldOut: SoldOutTiers;
  intake: Intake;
  waiter: DecisionWaiter;
  log: Logger;
  prefix: string;
  partitionCount: number;
  /** QUANTA_OUTCOME_SETTLE_MS: how long a write that may have landed is retried before the callback is left unanswered. */
  settleMs: number;
  now?: () => number;
}

const STATUS_FOR: Record<ErrorCode, number> = {
  invalid_body: 400,
  unknown_acquirer: 401,
  bad_signature: 401,
  stale_timestamp: 401,
  unknown_txn: 404,
  txn_conflict: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  overloaded: 503,
  txn_pending: 409,
  refund_conflict: 409,
  refund_exceeds_payment: 422,
  too_many_refunds: 422,
  refunded_at_out_of_bounds: 422,
};

type AnswerCounter = typeof attemptsAnswered;

function fail(
  reply: FastifyReply,
  code: ErrorCode,
  message?: string,
  field?: string,
  counter: AnswerCounter = attemptsAnswered,
) {
  if (code === "overloaded" || code === "txn_pending") reply.header("retry-after", "1");
  counter.inc({ outcome: "error", reason: code });
  return reply.code(STATUS_FOR[code]).send(errorBody(code, message, field));
}

export function buildApp(deps: IngressDeps): FastifyInstance {
  const now = deps.now ?? Date.now;
  const app = Fastify({ bodyLimit: BODY_LIMIT_BYTES, logger: false, return503OnClosing: true });

  // The signature covers the raw bytes: keep them, parse JSON only after the HMAC checks out.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: BODY_LIMIT_BYTES }, (_req, body, done) =>
    done(null, body),
  );

  app.setErrorHandler((error: { code?: string; statusCode?: number; message: string }, request, reply) => {
    switch (error.code) {
      case "outcome_unknown":
        // Something may have been accepted, and nothing will be decided on the strength of this
        // request alone: neither 503 ("nothing was accepted") nor 202 is true. Close the
        // connection unanswered, like a timeout: the acquirer resends, and the resend is answered
        // from what was stored (the same answer, or 409 for another body; docs/decisions/0012).
        deps.log.warn(
          { err: error, route: request.routeOptions.url },
          "outcome unknown; closing the callback unanswered",
        );
        callbacksUnanswered.inc({ route: request.routeOptions.url === "/v1/callbacks/refund" ? "refund" : "payment" });
        reply.hijack();
        request.raw.socket.destroy();
        return;
      case "FST_ERR_CTP_BODY_TOO_LARGE":
        return fail(reply, "body_too_large", `body is larger than ${BODY_LIMIT_BYTES} bytes`);
      case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      case "FST_ERR_CTP_INVALID_TYPE":
        return fail(reply, "unsupported_media_type", "content-type must be application/json");
      case "FST_ERR_CTP_EMPTY_JSON_BODY":
      case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
        return fail(reply, "invalid_body", error.message);
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return fail(reply, "invalid_body", error.message);
    }
    deps.log.error({ err: error }, "request failed");
    return fail(reply, "overloaded", "storage unavailable; nothing was accepted, retry later");
  });

  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    httpRequests.inc({ route, status: String(reply.statusCode) });
    httpDuration.observe({ route }, reply.elapsedTime / 1000);
  });

  registerOpsRoutes(app, {
    ready: () => Promise.all([sql`select 1`.execute(deps.db), deps.redis.ping()]),
    health: () => ({ holding: deps.waiter.size }),
  });

  app.post("/v1/callbacks/payment", async (request, reply) => handlePayment(deps, now, request, reply));
  app.post("/v1/callbacks/refund", async (request, reply) => handleRefund(deps, now, request, reply));
  app.get<{ Params: { txnId: string } }>("/v1/attempts/:txnId", async (request, reply) =>
    handleGet(deps, now, request, reply),
  );

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: { code: "not_found" } }));
  return app;
}

function authenticate(
  deps: IngressDeps,
  now: () => number,
  request: FastifyRequest,
  reply: FastifyReply,
  payload: string | Buffer,
  counter: AnswerCounter = attemptsAnswered,
) {
  const acquirerId = request.headers[ACQUIRER_HEADER];
  const secret = typeof acquirerId === "string" ? deps.secrets.get(acquirerId) : undefined;
  if (typeof acquirerId !== "string" || secret === undefined) {
    fail(reply, "unknown_acquirer", undefined, undefined, counter);
    return undefined;
  }
  const header = request.headers[SIGNATURE_HEADER];
  const check = verifySignature(typeof header === "string" ? header : undefined, secret, payload, now());
  if (!check.ok) {
    fail(reply, check.code, undefined, undefined, counter);
    return undefined;
  }
  return acquirerId;
}

function answer(reply: FastifyReply, row: DecisionRow) {
  const decision = rowDecision(row);
  attemptsAnswered.inc({ outcome: decision.status, reason: decision.status === "rejected" ? decision.reason : "" });
  return reply.code(200).send(decisionBody(row.txn_id, decision));
}

function pending(reply: FastifyReply, txnId: string) {
  attemptsAnswered.inc({ outcome: "pending", reason: "" });
  return reply.code(202).header("location", attemptLocation(txnId)).send({ txnId, status: "pending" });
}

async function handlePayment(deps: IngressDeps, now: () => number, request: FastifyRequest, reply: FastifyReply) {
  const receivedAtMs = now();
  const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
  const acquirerId = authenticate(deps, now, request, reply, raw);
  if (acquirerId === undefined) return reply;

  const parsed = parsePaymentBody(raw);
  if (!parsed.ok) return fail(reply, "invalid_body", parsed.message, parsed.field);
  // From here on the payer is its pseudonym: the body hash, the partition, the queue job, the
  // stored row and any log line see only that (the same payer always gets the same one;
  // docs/decisions/0011).
  const payment = { ...parsed.payment, payerId: payerRef(deps.payerKey, parsed.payment.payerId) };
  const base = {
    acquirerId,
    bodyHash: paymentHash(payment),
    payment,
    receivedAtMs,
    partition: partitionOf(payment.payerId, deps.partitionCount),
  };
  const classification = classify(payment, deps.campaigns());

  let entry: IntakeEntry;
  if (classification.kind === "decided") {
    entry = { attempt: base, immediate: { decision: classification.decision, checkHolder: false } };
  } else if (deps.soldOut.allEmpty(classification.request.campaignId, classification.request.tierIds)) {
    // Every qualifying tier is empty everywhere: no queue, no worker. The payer check still comes first,
    // and the statement that stores it re-checks the marks (a refund may have brought stock back).
    const { campaignId, activityId, tierIds } = classification.request;
    entry = {
      attempt: base,
      immediate: {
        decision: { status: "rejected", reason: "sold_out", campaignId, activityId },
        checkHolder: true,
        soldOutTiers: tierIds,
      },
    };
  } else {
    if (!deps.waiter.hasRoom()) return fail(reply, "overloaded", "too many callbacks held open");
    entry = { attempt: { ...base, request: classification.request } };
  }

  let result = await deps.intake.submit(entry);
  if (result.kind === "stale" && classification.kind === "needs_stock") {
    // Stock came back to a tier the ingress thought empty: decided like any attempt that needs stock.
    if (!deps.waiter.hasRoom()) return fail(reply, "overloaded", "too many callbacks held open");
    result = await deps.intake.submit({ attempt: { ...base, request: classification.request } }, true);
  }
  switch (result.kind) {
    case "stored":
      return answer(reply, result.row);
    case "conflict":
      return fail(reply, "txn_conflict");
    case "overloaded":
      return fail(reply, "overloaded", "backlog is over its bound; nothing was accepted");
    case "unavailable":
      return fail(reply, "overloaded", "storage did not answer in time; nothing was accepted, retry later");
    case "stale":
      throw new Error(`attempt ${payment.txnId} came back stale from a submission that needs stock`);
    case "queued":
      break;
  }
  const decided = await result.decision;
  if (decided.kind === "decided") {
    const body = decided.body as { status: string; reason?: string };
    attemptsAnswered.inc({ outcome: body.status, reason: body.reason ?? "" });
    return reply.code(200).send(body);
  }
  if (decided.kind === "conflict") return fail(reply, "txn_conflict");
  // No word within the wait. Before promising a decision (202), ask Postgres: a txn decided
  // earlier (its registration forgotten) makes this copy a repeat or a conflict, never pending.
  const row = await findAttempt(deps.db, acquirerId, payment.txnId).catch(() => undefined);
  if (row) return row.body_hash === base.bodyHash ? answer(reply, row) : fail(reply, "txn_conflict");
  return pending(reply, payment.txnId);
}

async function handleGet(
  deps: IngressDeps,
  now: () => number,
  request: FastifyRequest<{ Params: { txnId: string } }>,
  reply: FastifyReply,
) {
  const { txnId } = request.params;
  const acquirerId = authenticate(deps, now, request, reply, `GET /v1/attempts/${txnId}`);
  if (acquirerId === undefined) return reply;
  if (!TXN_ID_PATTERN.test(txnId)) return fail(reply, "unknown_txn");
  const row = await findAttempt(deps.db, acquirerId, txnId);
  if (row) return answer(reply, row);
  if ((await lookupTxn(deps.redis, deps.prefix, acquirerId, txnId)) !== undefined) return pending(reply, txnId);
  return fail(reply, "unknown_txn");
}

/**
 * A refund: one synchronous transaction (refunds are rare next to payments, and the acquirer
 * wants the outcome now). The same refundId with the same body always gets the same answer.
 */
async function handleRefund(deps: IngressDeps, now: () => number, request: FastifyRequest, reply: FastifyReply) {
  const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
  const acquirerId = authenticate(deps, now, request, reply, raw, refundsAnswered);
  if (acquirerId === undefined) return reply;
  const parsed = parseRefundBody(raw);
  if (!parsed.ok) return fail(reply, "invalid_body", parsed.message, parsed.field, refundsAnswered);
  const refund = parsed.refund;
  const bodyHash = refundHash(refund);
  // Idempotent by refundId: a try whose COMMIT landed unanswered is answered from the stored refund.
  const result = await withSettlingRetry(() => refundTx(deps.db, { acquirerId, ...refund, bodyHash }), {
    attemptsMax: 8,
    baseDelayMs: 10,
    delayMaxMs: 2_000,
    settleMs: deps.settleMs,
    onSettling: () => writesSettling.inc({ write: "refund" }),
  });
  switch (result.kind) {
    case "no_payment":
      if ((await lookupTxn(deps.redis, deps.prefix, acquirerId, refund.txnId)) !== undefined) {
        return fail(
          reply,
          "txn_pending",
          "the payment is accepted but not decided yet; retry after its decision",
          "txnId",
          refundsAnswered,
        );
      }
      return fail(
        reply,
        "unknown_txn",
        "no payment with this txnId was decided for this acquirer",
        "txnId",
        refundsAnswered,
      );
    case "exceeds_payment":
      return fail(
        reply,
        "refund_exceeds_payment",
        `refunds would add up to ${result.refundedBeforeFen + refund.amountFen} fen of a ${result.paymentAmountFen} fen payment (${result.refundedBeforeFen} refunded before)`,
        "amountFen",
        refundsAnswered,
      );
    case "too_many_refunds":
      return fail(
        reply,
        "too_many_refunds",
        `the payment has ${result.refundsBefore} refunds, the most one payment may have`,
        "txnId",
        refundsAnswered,
      );
    case "refunded_at_out_of_bounds":
      return fail(reply, "refunded_at_out_of_bounds", result.message, "refundedAt", refundsAnswered);
    case "stored":
      if (result.row.body_hash !== bodyHash) {
        return fail(
          reply,
          "refund_conflict",
          "this refundId was seen before with a different body",
          "refundId",
          refundsAnswered,
        );
      }
      break;
    case "recorded":
      break;
  }
  const body = refundAnswer(result.row, result.payment);
  refundsAnswered.inc({ outcome: body.status, reason: body.status === "no_voucher" ? body.reason : "" });
  return reply.code(200).send(body);
}
