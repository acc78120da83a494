import type { QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

/**
 * First sighting of a txnId, kept until its decision is long stored: the
 * body hash, so that a second body for the same txnId is refused (409) even
 * before the first is decided. Returns undefined on first sighting, else the
 * hash stored by the first.
 */
export async function registerTxn(
  redis: QuantaRedis,
  prefix: string,
  acquirerId: string,
  txnId: string,
  bodyHash: string,
  ttlS: number,
): Promise<string | undefined> {
  const previous = await redis.set(keys.txn(prefix, acquirerId, txnId), bodyHash, "EX", ttlS, "NX", "GET");
  return previous ?? undefined;
}

export async function lookupTxn(redis: QuantaRedis, prefix: string, acquirerId: string, txnId: string): Promise<string | undefined> {
  return (await redis.get(keys.txn(prefix, acquirerId, txnId))) ?? undefined;
}
