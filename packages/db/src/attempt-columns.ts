/**
 * The columns of an attempt row as written in bulk (unnest of one array per
 * column), with their Postgres element types. One list, so the worker's
 * batch write and the ingress's immediate write cannot drift apart.
 */
export const ATTEMPT_COLUMNS = [
  ["acquirer_id", "text"],
  ["txn_id", "text"],
  ["body_hash", "text"],
  ["payer_id", "text"],
  ["merchant_id", "text"],
  ["amount_fen", "bigint"],
  ["paid_at", "timestamptz"],
  ["received_at", "timestamptz"],
  ["partition", "int"],
  ["status", "text"],
  ["reason", "text"],
  ["campaign_id", "text"],
  ["activity_id", "text"],
  ["tier_id", "text"],
  ["discount_fen", "bigint"],
  ["payable_fen", "bigint"],
  ["decided_by", "text"],
] as const;

/** One array per column, in ATTEMPT_COLUMNS order, from rows keyed by column name. */
export function columnArrays(rows: readonly Readonly<Record<string, unknown>>[]): unknown[][] {
  return ATTEMPT_COLUMNS.map(([c]) => rows.map((r) => r[c]));
}
