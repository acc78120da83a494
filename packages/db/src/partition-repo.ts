import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * Ownership fencing. Redis leases say who should drain a partition; this
 * epoch says who may commit for it. Taking a partition bumps its epoch under
 * the row lock that every batch transaction also takes, so a paused or
 * partitioned ("zombie") worker holding an old epoch can no longer commit.
 */
export class FencedOutError extends Error {
  override readonly name = "FencedOutError";
  readonly code = "partition_fenced";
  constructor(
    message: string,
    /** The partition whose epoch moved on. */
    readonly partition?: number,
  ) {
    super(message);
  }
}

export async function claimPartition(db: Kysely<Database>, partition: number, owner: string): Promise<number> {
  const row = await db
    .updateTable("partitions")
    .set({ owner, epoch: sql`epoch + 1`, acquired_at: sql`now()` })
    .where("partition", "=", partition)
    .returning("epoch")
    .executeTakeFirstOrThrow();
  return row.epoch;
}
