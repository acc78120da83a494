import type { FastifyReply, FastifyRequest } from "fastify";
import { TXN_ID_PATTERN } from "@quanta/contract";
import { findAttempt } from "@quanta/db";
import { lookupTxn } from "@quanta/queue";
import { answer, authenticate, fail, pending } from "./answers.js";
import type { IngressDeps } from "./ingress-deps.js";

/**
 * GET /v1/attempts/:txnId: the stored decision (200), pending (202) while the txn is queued and
 * undecided, or 404 (also while the ingress is still storing a decision it made itself, which
 * may never land). The signature covers the request line, as there is no body.
 */
export async function handleGet(
  deps: IngressDeps,
  now: () => number,
  request: FastifyRequest<{ Params: { txnId: string } }>,
  reply: FastifyReply,
) {
  const { txnId } = request.params;
  const acquirerId = authenticate(deps.secrets, now(), request, reply, `GET /v1/attempts/${txnId}`);
  if (acquirerId === undefined) return reply;
  if (!TXN_ID_PATTERN.test(txnId)) return fail(reply, "unknown_txn");
  const row = await findAttempt(deps.db, acquirerId, txnId);
  if (row) return answer(reply, row);
  // Pending only when queued: a decision the ingress is storing itself (or whose statement's outcome
  // was unknown) is no promise, and the acquirer is to send the payment again.
  const registered = await lookupTxn(deps.redis, deps.prefix, acquirerId, txnId);
  if (registered && !registered.storedByIngress) return pending(reply, txnId);
  return fail(reply, "unknown_txn");
}
