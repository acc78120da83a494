import type { FastifyReply, FastifyRequest } from "fastify";
import { parseRefundBody, refundHash, type Refund } from "@quanta/contract";
import { refundTx, withSettlingRetry, type RefundTxResult } from "@quanta/db";
import { lookupTxn } from "@quanta/queue";
import { refundsAnswered, writesSettling } from "@quanta/telemetry";
import { authenticate, fail, rawBody } from "./answers.js";
import type { IngressDeps } from "./ingress-deps.js";
import { refundAnswer } from "./refund-answer.js";

/**
 * A refund: one synchronous transaction (refunds are rare next to payments, and the acquirer
 * wants the outcome now). The same refundId with the same body always gets the same answer.
 */
export async function handleRefund(deps: IngressDeps, now: () => number, request: FastifyRequest, reply: FastifyReply) {
  const raw = rawBody(request);
  const acquirerId = authenticate(deps.secrets, now(), request, reply, raw, refundsAnswered);
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
  if (result.kind === "no_payment") {
    // Pending only when queued, as GET says (a decision the ingress stores itself was never a 202).
    const registered = await lookupTxn(deps.redis, deps.prefix, acquirerId, refund.txnId);
    const queued = registered !== undefined && !registered.storedByIngress;
    return queued
      ? refuse(reply, "txn_pending", "the payment is accepted but not decided yet; retry after its decision", "txnId")
      : refuse(reply, "unknown_txn", "no payment with this txnId was decided for this acquirer", "txnId");
  }
  if (result.kind !== "stored" && result.kind !== "recorded") return refuseRefund(reply, refund, result);
  if (result.kind === "stored" && result.row.body_hash !== bodyHash) {
    return refuse(reply, "refund_conflict", "this refundId was seen before with a different body", "refundId");
  }
  const body = refundAnswer(result.row, result.payment);
  refundsAnswered.inc({ outcome: body.status, reason: body.status === "no_voucher" ? body.reason : "" });
  return reply.code(200).send(body);
}

const refuse = (reply: FastifyReply, code: Parameters<typeof fail>[1], message: string, field: string) =>
  fail(reply, code, message, field, refundsAnswered);

/** The 422s: a refund the payment cannot take, with the figures that say why. */
function refuseRefund(
  reply: FastifyReply,
  refund: Refund,
  result: Extract<RefundTxResult, { kind: "exceeds_payment" | "too_many_refunds" | "refunded_at_out_of_bounds" }>,
) {
  switch (result.kind) {
    case "exceeds_payment":
      return refuse(
        reply,
        "refund_exceeds_payment",
        `refunds would add up to ${result.refundedBeforeFen + refund.amountFen} fen of a ${result.paymentAmountFen} fen payment (${result.refundedBeforeFen} refunded before)`,
        "amountFen",
      );
    case "too_many_refunds":
      return refuse(
        reply,
        "too_many_refunds",
        `the payment has ${result.refundsBefore} refunds, the most one payment may have`,
        "txnId",
      );
    case "refunded_at_out_of_bounds":
      return refuse(reply, "refunded_at_out_of_bounds", result.message, "refundedAt");
  }
}
