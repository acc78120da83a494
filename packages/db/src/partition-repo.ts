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

/**
 * Takes a partition: bumps its epoch under its row lock. The former owner's round may hold that
 * lock; the claim waits at most lockTimeoutMs for it (then fails with 55P03 and the caller gives
 * the lease back and tries again), so a claim never outlives the lease it was made under. A
 * former owner frozen inside its round is ended by the server's idle_in_transaction_session_timeout
 * (see connect.ts), which is what lets a later claim through (docs/decisions/0013).
 */
export async function claimPartition(
  db: Kysely<Database>,
  partition: number,
  owner: string,
  lockTimeoutMs = 5_000,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config('lock_timeout', ${String(lockTimeoutMs)}, true)`.execute(trx);
    const row = await trx
      .updateTable("partitions")
      .set({ owner, epoch: sql`epoch + 1`, acquired_at: sql`now()` })
      .where("partition", "=", partition)
      .returning("epoch")
      .executeTakeFirstOrThrow();
    return row.epoch;
  });
}
