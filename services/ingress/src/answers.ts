import type { FastifyReply, FastifyRequest } from "fastify";
import {
  ACQUIRER_HEADER,
  SIGNATURE_HEADER,
  attemptLocation,
  decisionBody,
  errorBody,
  verifySignature,
  type ErrorCode,
} from "@quanta/contract";
import { rowDecision, type DecisionRow } from "@quanta/db";
import { attemptsAnswered } from "@quanta/telemetry";

/**
 * The contract's answers, each counted once as it is sent: errors with their status, a stored
 * decision (200) and pending (202). The one place that maps an error code to an HTTP status.
 */
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

/** Payment answers and refund answers are counted apart (their outcomes differ). */
export type AnswerCounter = typeof attemptsAnswered;

export function fail(
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

export function answer(reply: FastifyReply, row: DecisionRow) {
  const decision = rowDecision(row);
  attemptsAnswered.inc({ outcome: decision.status, reason: decision.status === "rejected" ? decision.reason : "" });
  return reply.code(200).send(decisionBody(row.txn_id, decision));
}

export function pending(reply: FastifyReply, txnId: string) {
  attemptsAnswered.inc({ outcome: "pending", reason: "" });
  return reply.code(202).header("location", attemptLocation(txnId)).send({ txnId, status: "pending" });
}

/** The request's bytes as received: the signature covers them, not the parsed JSON. */
export function rawBody(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

/**
 * The acquirer the request is signed by, or undefined once the error is answered (an unknown
 * acquirer, a bad signature or a stale timestamp): nothing is decided without a valid signature.
 */
export function authenticate(
  secrets: ReadonlyMap<string, string>,
  nowMs: number,
  request: FastifyRequest,
  reply: FastifyReply,
  payload: string | Buffer,
  counter: AnswerCounter = attemptsAnswered,
): string | undefined {
  const acquirerId = request.headers[ACQUIRER_HEADER];
  const secret = typeof acquirerId === "string" ? secrets.get(acquirerId) : undefined;
  if (typeof acquirerId !== "string" || secret === undefined) {
    fail(reply, "unknown_acquirer", undefined, undefined, counter);
    return undefined;
  }
  const header = request.headers[SIGNATURE_HEADER];
  const check = verifySignature(typeof header === "string" ? header : undefined, secret, payload, nowMs);
  if (!check.ok) {
    fail(reply, check.code, undefined, undefined, counter);
    return undefined;
  }
  return acquirerId;
}
