import type { QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

/**
 * The txn registry: a queued txn -> the body hash first seen, so that a second body for the same
 * txnId is refused (409) even before the first is decided. Written in batches by
 * intake-admit.lua, deleted by the worker once the decision is stored (from then on Postgres
 * answers for the txn). Read by GET /v1/attempts (pending or unknown).
 */
export async function lookupTxn(redis: QuantaRedis, prefix: string, acquirerId: string, txnId: string): Promise<string | undefined> {
  return (await redis.get(keys.txn(prefix, acquirerId, txnId))) ?? undefined;
}
