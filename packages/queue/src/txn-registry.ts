import type { QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

/**
 * The txn registry: a txn in flight (queued for a worker, or being stored by the ingress when it
 * needs no stock) -> the body hash first seen, so that a second body for the same txnId is
 * refused (409) even before the first is decided. Written in batches by intake-register.lua,
 * deleted by whoever stored the decision (the worker or the ingress; from then on Postgres
 * answers for the txn), or taken back when the attempt was not accepted after all. Read by
 * GET /v1/attempts (pending or unknown). See docs/decisions/0010.
 */
export async function lookupTxn(
  redis: QuantaRedis,
  prefix: string,
  acquirerId: string,
  txnId: string,
): Promise<string | undefined> {
  return (await redis.get(keys.txn(prefix, acquirerId, txnId))) ?? undefined;
}
