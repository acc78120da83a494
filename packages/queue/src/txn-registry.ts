import type { QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

/**
 * The txn registry: first sighting of a txnId -> its body hash, kept until
 * its decision is long stored, so that a second body for the same txnId is
 * refused (409) even before the first is decided. Written in batches by
 * intake-admit.lua; read here by GET /v1/attempts (pending or unknown).
 */
export async function lookupTxn(redis: QuantaRedis, prefix: string, acquirerId: string, txnId: string): Promise<string | undefined> {
  return (await redis.get(keys.txn(prefix, acquirerId, txnId))) ?? undefined;
}
