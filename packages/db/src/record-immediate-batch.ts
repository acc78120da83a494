import type pg from "pg";
import { ATTEMPT_COLUMNS, columnArrays } from "./attempt-columns.js";
import { attemptKey, findAttempts, recordValues, type AttemptRecord, type AttemptRow } from "./attempt-repo.js";
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * Stores many decisions that need no stock in one statement (the ingress's
 * group commit): rejections decided from the payment alone, and `sold_out`
 * for tiers already marked empty everywhere.
 *
 * Inputs: records in arrival order; `checkHolder` on a record turns its
 * `sold_out` into `already_redeemed` when the payer already holds a voucher
 * of that activity (the contract checks the payer before stock), read in the
 * same statement through the one-grant-per-payer index.
 * Idempotent: a txn stored before keeps its first row, which is returned in
 * its place (the caller compares body hashes). Trade-off: the holder check
 * reads committed grants only; a grant committing concurrently for the same
 * payer may be missed, which yields `sold_out` instead of `already_redeemed`:
 * both are refusals, and the tier is empty everywhere either way.
 */
export interface ImmediateRecord {
  record: AttemptRecord;
  checkHolder: boolean;
}

const N = ATTEMPT_COLUMNS.length;
const INSERT = `
  insert into attempts (${ATTEMPT_COLUMNS.map(([c]) => c).join(", ")})
  select ${ATTEMPT_COLUMNS.map(([c]) =>
    c === "reason"
      ? // A scalar subquery with limit 1, not exists(): exists() may be planned as a hashed subplan that
        // reads every grant of the campaign on each call.
        `case when u.check_holder and (select true from attempts h where h.status = 'granted' and h.payer_id = u.payer_id
                   and h.campaign_id = u.campaign_id and h.activity_id = u.activity_id limit 1) then 'already_redeemed' else u.reason end`
      : `u.${c}`,
  ).join(", ")}
    from unnest(${ATTEMPT_COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(", ")}, $${N + 1}::bool[])
      as u(${ATTEMPT_COLUMNS.map(([c]) => c).join(", ")}, check_holder)
  on conflict (acquirer_id, txn_id) do nothing
  returning *`;

/** Returns the stored row of every record, by attemptKey. */
export async function recordImmediateBatch(
  pool: pg.Pool,
  db: Kysely<Database>,
  records: readonly ImmediateRecord[],
): Promise<Map<string, AttemptRow>> {
  const stored = new Map<string, AttemptRow>();
  if (records.length === 0) return stored;
  // One row per txn: a repeat inside the batch is answered from the first.
  const unique = new Map<string, ImmediateRecord>();
  for (const r of records) {
    const key = attemptKey(r.record.acquirerId, r.record.payment.txnId);
    if (!unique.has(key)) unique.set(key, r);
  }
  const rows = [...unique.values()];
  const inserted = await pool.query<AttemptRow>({
    name: "immediate_write",
    text: INSERT,
    values: [...columnArrays(rows.map((r) => recordValues(r.record))), rows.map((r) => r.checkHolder)],
  });
  for (const row of inserted.rows) stored.set(attemptKey(row.acquirer_id, row.txn_id), row);
  const missing = [...unique.values()].filter((r) => !stored.has(attemptKey(r.record.acquirerId, r.record.payment.txnId)));
  if (missing.length > 0) {
    for (const row of await findAttempts(db, missing.map((r) => ({ acquirerId: r.record.acquirerId, txnId: r.record.payment.txnId })))) {
      stored.set(attemptKey(row.acquirer_id, row.txn_id), row);
    }
  }
  return stored;
}
