import type { QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

/**
 * The txn registry: a txn in flight (queued for a worker, or being stored by the ingress when it
 * needs no stock) -> the body hash first seen, so that a second body for the same txnId is
 * refused (409) even before the first is decided. Written in batches by intake-register.lua,
 * deleted by whoever stored the decision (the worker or the ingress; from then on Postgres
 * answers for the txn), or taken back when the attempt was not accepted after all. Read by
 * GET /v1/attempts (pending, or unknown) and the refund route. See docs/decisions/0010.
 */
export interface TxnRegistration {
  bodyHash: string;
  /**
   * The ingress is storing this body's decision itself (no stock needed), or its statement's
   * outcome was unknown: nothing queued the txn, so nothing else will decide it.
   */
  storedByIngress: boolean;
}

/** What intake-register.lua appends to the hash of a body whose decision the ingress stores itself. */
const STORED_BY_INGRESS = ":i";

export async function lookupTxn(
  redis: QuantaRedis,
  prefix: string,
  acquirerId: string,
  txnId: string,
): Promise<TxnRegistration | undefined> {
  const value = await redis.get(keys.txn(prefix, acquirerId, txnId));
  if (value === null) return undefined;
  const storedByIngress = value.endsWith(STORED_BY_INGRESS);
  return { bodyHash: storedByIngress ? value.slice(0, -STORED_BY_INGRESS.length) : value, storedByIngress };
}
