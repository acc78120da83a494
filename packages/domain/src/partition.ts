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

/**
 * The first payer id `${base}0`, `${base}1`, … that hashes to `partition`: how tests and the
 * capacity benchmark aim attempts at one partition. About partitionCount tries on average.
 */
export function payerInPartition(base: string, partition: number, partitionCount: number): string {
  if (!Number.isInteger(partitionCount) || partitionCount < 1)
    throw new RangeError(`partition count ${partitionCount} is not a positive integer`);
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitionCount)
    throw new RangeError(`partition ${partition} is not one of 0..${partitionCount - 1}`);
  for (let i = 0; ; i++) {
    const payerId = `${base}${i}`;
    if (partitionOf(payerId, partitionCount) === partition) return payerId;
  }
}
