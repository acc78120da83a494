import type pg from "pg";
import { ATTEMPT_COLUMNS, columnArrays } from "./attempt-columns.js";
import {
  attemptKey,
  decisionColumnList,
  findAttempts,
  recordValues,
  type AttemptRecord,
  type DecisionRow,
} from "./attempt-repo.js";
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * Stores many decisions that need no stock in one statement (the ingress's
 * group commit): rejections decided from the payment alone, and `sold_out`
 * for tiers the ingress believes marked empty everywhere.
 *
 * Inputs: records in arrival order; `checkHolder` on a record turns its
 * `sold_out` into `already_redeemed` when the payer already holds a voucher
 * (slot not released) of that activity (the contract checks the payer before
 * stock), read in the same statement through the one-grant-per-payer index;
 * `soldOutTiers` on a sold_out record names the tiers it was refused on.
 * The ingress's view of the marks is up to a refresh old, and a refund can
 * clear a mark (stock came back): the statement takes a KEY SHARE lock on the
 * marked tier rows it relies on and stores a sold_out only if every one of its
 * tiers is still marked. A refund's FOR UPDATE on the tier row waits for this
 * statement's transaction, so no sold_out is stamped after a voucher came
 * back (I6 in time). Records whose mark is gone are not stored: they come back
 * as `stale`, and the caller queues them for a worker. Lock order: the marked tier rows first,
 * then the inserts (a round inserting the same txn waits for this statement, which then waits for
 * nothing).
 * Idempotent: a txn stored before keeps its first row, which is returned in
 * its place (the caller compares body hashes). Trade-off: the holder check
 * reads committed grants only; a grant committing concurrently for the same
 * payer may be missed, which yields `sold_out` instead of `already_redeemed`:
 * both are refusals, and the tier is empty everywhere either way.
 */
export interface ImmediateRecord {
  record: AttemptRecord;
  checkHolder: boolean;
  /** For a sold_out decided from the marks: the tiers that must still be marked. */
  soldOutTiers?: readonly string[];
}

export interface ImmediateOutcome {
  /** The stored row of every record stored now or before, by attemptKey. */
  stored: Map<string, DecisionRow>;
  /** attemptKeys of sold_out records not stored because a tier's mark was gone. */
  stale: Set<string>;
}

const N = ATTEMPT_COLUMNS.length;

/**
 * The insert as common table expressions (u, marked, imm, imm_before), parameters numbered from
 * offset + 1 (see immediateInsertValues): `imm` returns the decision columns of the rows
 * inserted, `imm_before` those of the rows other copies stored before (a resend of a decided
 * txn), looked up by key for the records not inserted, so a resend costs no statement of its own
 * (a sold_out whose marks are gone has neither: settleImmediate calls it stale).
 */
function immediateInsertCtes(offset: number): string {
  const $ = (i: number) => `$${offset + i}`;
  return `
  u as materialized (
    select * from unnest(${ATTEMPT_COLUMNS.map(([, t], i) => `${$(i + 1)}::${t}[]`).join(", ")}, ${$(N + 1)}::bool[], ${$(N + 2)}::text[])
      as u(${ATTEMPT_COLUMNS.map(([c]) => c).join(", ")}, check_holder, sold_out_tiers)),
  marked as materialized (
    select t.campaign_id, t.id from tiers t
     where t.sold_out_at is not null
       and (t.campaign_id, t.id) in (select u.campaign_id, unnest(string_to_array(u.sold_out_tiers, ',')) from u where u.sold_out_tiers is not null)
     order by t.campaign_id, t.id
       for key share of t),
  imm as (
    insert into attempts (${ATTEMPT_COLUMNS.map(([c]) => c).join(", ")})
    select ${ATTEMPT_COLUMNS.map(([c]) =>
      c === "reason"
        ? // A scalar subquery with limit 1, not exists(): exists() may be planned as a hashed subplan that
          // reads every grant of the campaign on each call (docs/decisions/0007).
          `case when u.check_holder and (select true from attempts h where h.status = 'granted' and h.slot_released_at is null
                     and h.payer_id = u.payer_id and h.campaign_id = u.campaign_id and h.activity_id = u.activity_id limit 1)
                then 'already_redeemed' else u.reason end`
        : `u.${c}`,
    ).join(", ")}
      -- Joined with the count of marked rows, so that every KEY SHARE lock is taken before the
      -- first row is inserted: an insert of a txn that a round is also inserting makes the round
      -- wait, so this statement must not wait for a tier row after it (a deadlock with a round
      -- that holds that tier row).
      from u cross join (select count(*) as n from marked) locked
     where u.sold_out_tiers is null
        or (select count(*) from marked m where m.campaign_id = u.campaign_id and m.id = any(string_to_array(u.sold_out_tiers, ',')))
           = cardinality(string_to_array(u.sold_out_tiers, ','))
    on conflict (acquirer_id, txn_id) do nothing
    returning ${decisionColumnList()}),
  imm_before as (
    select b.* from u
     cross join lateral (select ${decisionColumnList("x")} from attempts x where x.acquirer_id = u.acquirer_id and x.txn_id = u.txn_id) b
     where (u.acquirer_id, u.txn_id) not in (select i.acquirer_id, i.txn_id from imm i))`;
}

/** The parameters of immediateInsertCtes, for records already made unique by txn. */
function immediateInsertValues(rows: readonly ImmediateRecord[]): unknown[] {
  return [
    ...columnArrays(rows.map((r) => recordValues(r.record))),
    rows.map((r) => r.checkHolder),
    rows.map((r) => (r.soldOutTiers && r.soldOutTiers.length > 0 ? r.soldOutTiers.join(",") : null)),
  ];
}

const INSERT = `with ${immediateInsertCtes(0)} select * from imm union all select * from imm_before`;

export async function recordImmediateBatch(
  pool: pg.Pool,
  db: Kysely<Database>,
  records: readonly ImmediateRecord[],
): Promise<ImmediateOutcome> {
  return settleImmediate(db, records, await insertImmediate(pool, records));
}

/**
 * The insert, one autocommit statement, with the rows other copies stored before: settleImmediate
 * needs a query of its own only for a copy committed while the statement ran.
 */
export async function insertImmediate(
  client: pg.Pool | pg.PoolClient,
  records: readonly ImmediateRecord[],
): Promise<DecisionRow[]> {
  const rows = [...uniqueByTxn(records).values()];
  if (rows.length === 0) return [];
  return (
    await client.query<DecisionRow>({ name: "immediate_write", text: INSERT, values: immediateInsertValues(rows) })
  ).rows;
}

/** Every record's stored row (inserted now, or stored before by another copy) and the stale ones. */
export async function settleImmediate(
  db: Kysely<Database>,
  records: readonly ImmediateRecord[],
  inserted: readonly DecisionRow[],
): Promise<ImmediateOutcome> {
  const stored = new Map<string, DecisionRow>();
  const stale = new Set<string>();
  const unique = uniqueByTxn(records);
  for (const row of inserted) stored.set(attemptKey(row.acquirer_id, row.txn_id), row);
  const missing = [...unique.values()].filter(
    (r) => !stored.has(attemptKey(r.record.acquirerId, r.record.payment.txnId)),
  );
  if (missing.length > 0) {
    for (const row of await findAttempts(
      db,
      missing.map((r) => ({ acquirerId: r.record.acquirerId, txnId: r.record.payment.txnId })),
    )) {
      stored.set(attemptKey(row.acquirer_id, row.txn_id), row);
    }
  }
  for (const r of missing) {
    const key = attemptKey(r.record.acquirerId, r.record.payment.txnId);
    if (!stored.has(key) && r.soldOutTiers) stale.add(key);
  }
  return { stored, stale };
}

/** One row per txn: a repeat inside the batch is answered from the first. */
export function uniqueByTxn(records: readonly ImmediateRecord[]): Map<string, ImmediateRecord> {
  const unique = new Map<string, ImmediateRecord>();
  for (const r of records) {
    const key = attemptKey(r.record.acquirerId, r.record.payment.txnId);
    if (!unique.has(key)) unique.set(key, r);
  }
  return unique;
}
