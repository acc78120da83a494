import { createHash } from "node:crypto";

/**
 * Payer -> partition. A stable hash (first 4 bytes of SHA-256), so every
 * process, language and restart agrees; the partition count is fixed for a
 * deployment (stored in Postgres) because changing it would move payers.
 */
export function partitionOf(payerId: string, partitionCount: number): number {
  const digest = createHash("sha256").update(payerId).digest();
  return digest.readUInt32BE(0) % partitionCount;
}
