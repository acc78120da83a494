import type { FastifyReply, FastifyRequest } from "fastify";
import { classify, partitionOf, type Classification, type ReceivedAttempt } from "@quanta/domain";
import { parsePaymentBody, payerRef, paymentHash } from "@quanta/contract";
import { findAttempt } from "@quanta/db";
import { attemptsAnswered } from "@quanta/telemetry";
import { answer, authenticate, fail, pending, rawBody } from "./answers.js";
import type { WaitResult } from "./decision-waiter.js";
import type { IngressDeps } from "./ingress-deps.js";
import type { IntakeEntry, IntakeResult } from "./intake.js";

/**
 * A payment callback, from the request to its answer. The six steps of docs/architecture.md,
 * by the names they have in code:
 *   1. acceptPayment: signature, body, payer pseudonym, classification (here);
 *   2. submitPayment → Intake.submit: admitted, then queued for the partition's owner, or the
 *      ingress's own decision stored (stock-free: not eligible, or every tier already empty);
 *   3. PartitionDrain.park, 4. BatchFlusher.round and 5. BatchFlusher.publish: the owning
 *      worker (packages/owner) takes the job, decides it in a round and publishes the decision;
 *   6. answerDecision: the published decision (200), or Postgres's when none came in time
 *      (200 or 409), or 202 pending.
 * A step that answers (an error, or a stored decision) ends the request there.
 */
export async function handlePayment(
  deps: IngressDeps,
  now: () => number,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const accepted = acceptPayment(deps, now, request, reply);
  if (accepted === undefined) return reply;
  const submitted = await submitPayment(deps, accepted, reply);
  if (submitted === undefined) return reply;
  return answerDecision(deps, accepted.attempt, reply, await submitted);
}

interface AcceptedPayment {
  /** The attempt as stored and queued: the payer already its pseudonym. */
  attempt: ReceivedAttempt;
  classification: Classification;
}

/** Step 1; undefined once an error is answered (401, 400). */
function acceptPayment(
  deps: IngressDeps,
  now: () => number,
  request: FastifyRequest,
  reply: FastifyReply,
): AcceptedPayment | undefined {
  const receivedAtMs = now();
  const raw = rawBody(request);
  const acquirerId = authenticate(deps.secrets, now(), request, reply, raw);
  if (acquirerId === undefined) return undefined;
  const parsed = parsePaymentBody(raw);
  if (!parsed.ok) {
    fail(reply, "invalid_body", parsed.message, parsed.field);
    return undefined;
  }
  // From here on the payer is its pseudonym: the body hash, the partition, the queue job, the
  // stored row and any log line see only that (the same payer always gets the same one;
  // docs/decisions/0011).
  const payment = { ...parsed.payment, payerId: payerRef(deps.payerKey, parsed.payment.payerId) };
  const attempt = {
    acquirerId,
    bodyHash: paymentHash(payment),
    payment,
    receivedAtMs,
    partition: partitionOf(payment.payerId, deps.partitionCount),
  };
  return { attempt, classification: classify(payment, deps.campaigns()) };
}

/**
 * Step 2. Resolves to the decision to wait for when the attempt was queued; undefined once
 * answered from the submission itself (a stored decision, 409, 503).
 */
async function submitPayment(
  deps: IngressDeps,
  { attempt, classification }: AcceptedPayment,
  reply: FastifyReply,
): Promise<Promise<WaitResult> | undefined> {
  const entry = intakeEntry(deps, attempt, classification);
  if (entry === undefined) {
    fail(reply, "overloaded", "too many callbacks held open");
    return undefined;
  }
  let result = await deps.intake.submit(entry);
  if (result.kind === "stale" && classification.kind === "needs_stock") {
    // Stock came back to a tier the ingress thought empty: decided like any attempt that needs stock.
    if (!deps.waiter.hasRoom()) {
      fail(reply, "overloaded", "too many callbacks held open");
      return undefined;
    }
    result = await deps.intake.submit({ attempt: { ...attempt, request: classification.request } }, true);
  }
  if (result.kind === "queued") return result.decision;
  answerSubmission(reply, result, attempt.payment.txnId);
  return undefined;
}

/**
 * What to submit: the ingress's own decision when no stock is needed (not eligible, or every
 * qualifying tier already empty everywhere), else the attempt for the partition's owner;
 * undefined when the process holds as many open callbacks as it may.
 */
function intakeEntry(
  deps: IngressDeps,
  attempt: ReceivedAttempt,
  classification: Classification,
): IntakeEntry | undefined {
  if (classification.kind === "decided") {
    return { attempt, immediate: { decision: classification.decision, checkHolder: false } };
  }
  const { campaignId, activityId, tierIds } = classification.request;
  if (deps.soldOut.allEmpty(campaignId, tierIds)) {
    // No queue, no worker. The payer check still comes first, and the statement that stores it
    // re-checks the marks (a refund may have brought stock back).
    const decision = { status: "rejected", reason: "sold_out", campaignId, activityId } as const;
    return { attempt, immediate: { decision, checkHolder: true, soldOutTiers: tierIds } };
  }
  if (!deps.waiter.hasRoom()) return undefined;
  return { attempt: { ...attempt, request: classification.request } };
}

function answerSubmission(reply: FastifyReply, result: Exclude<IntakeResult, { kind: "queued" }>, txnId: string) {
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
      throw new Error(`attempt ${txnId} came back stale from a submission that needs stock`);
  }
}

/** Step 6. */
async function answerDecision(deps: IngressDeps, attempt: ReceivedAttempt, reply: FastifyReply, decided: WaitResult) {
  if (decided.kind === "decided") {
    const body = decided.body as { status: string; reason?: string };
    attemptsAnswered.inc({ outcome: body.status, reason: body.reason ?? "" });
    return reply.code(200).send(body);
  }
  if (decided.kind === "conflict") return fail(reply, "txn_conflict");
  // No word within the wait. Before promising a decision (202), ask Postgres: a txn decided
  // earlier (its registration forgotten) makes this copy a repeat or a conflict, never pending.
  const row = await findAttempt(deps.db, attempt.acquirerId, attempt.payment.txnId).catch(() => undefined);
  if (row) return row.body_hash === attempt.bodyHash ? answer(reply, row) : fail(reply, "txn_conflict");
  return pending(reply, attempt.payment.txnId);
}
