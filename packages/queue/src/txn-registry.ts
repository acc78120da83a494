import type { ChainableCommander } from "ioredis";
import type { QuantaPipeline, QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

/**
 * The txn registry: a txn in flight -> the body hash first seen, so that a second body for the
 * same txnId is refused (409) even before the first is decided. Written in batches by
 * intake-admit.lua, forgotten by txn-forget.lua once the decision is stored (from then on
 * Postgres answers for the txn). Read by GET /v1/attempts (pending or unknown).
 */
export async function lookupTxn(redis: QuantaRedis, prefix: string, acquirerId: string, txnId: string): Promise<string | undefined> {
  return (await redis.get(keys.txn(prefix, acquirerId, txnId))) ?? undefined;
}

export interface DecidedTxn {
  acquirerId: string;
  txnId: string;
  /** The body hash of the attempt decided (or answered 409). */
  bodyHash: string;
}

/** Adds to a pipeline: forget these txns' registrations, each only while it holds that body hash. */
export function forgetDecided(pipeline: ChainableCommander, prefix: string, txns: readonly DecidedTxn[]): void {
  if (txns.length === 0) return;
  (pipeline as unknown as QuantaPipeline).txnForget(txns.length, ...txns.map((t) => keys.txn(prefix, t.acquirerId, t.txnId)), ...txns.map((t) => t.bodyHash));
}
