import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";
import type { InvariantCheck } from "./verify.js";

/**
 * I3 from the caller's side: every acknowledged (200/202) txn has exactly one stored decision.
 * Counted rather than looked up by existence, so a txn stored twice (a primary key lost to a
 * restore or a hand-made table) is reported as well as one never decided. An empty list fails:
 * it proves nothing, and is far more likely a wrong or truncated file than a quiet day.
 */
export async function checkAcknowledged(
  db: Kysely<Database>,
  acknowledged: readonly { acquirerId: string; txnId: string }[],
): Promise<InvariantCheck> {
  const keys = [...new Map(acknowledged.map((k) => [`${k.acquirerId}/${k.txnId}`, k])).values()];
  if (keys.length === 0)
    return { id: "I3", ok: false, detail: "no acknowledged txns to check: an empty list proves nothing" };
  const missing: string[] = [];
  const twice: string[] = [];
  for (let i = 0; i < keys.length; i += 10_000) {
    const slice = keys.slice(i, i + 10_000);
    const rows = await sql<{ acquirer_id: string; txn_id: string; decisions: string }>`
      select k.acquirer_id, k.txn_id, count(a.txn_id) as decisions
        from unnest(${slice.map((k) => k.acquirerId)}::text[], ${slice.map((k) => k.txnId)}::text[]) as k(acquirer_id, txn_id)
        left join attempts a on a.acquirer_id = k.acquirer_id and a.txn_id = k.txn_id
       group by k.acquirer_id, k.txn_id
      having count(a.txn_id) <> 1
       order by k.acquirer_id, k.txn_id`.execute(db);
    for (const r of rows.rows) {
      if (Number(r.decisions) === 0) missing.push(`${r.acquirer_id}/${r.txn_id}`);
      else twice.push(`${r.acquirer_id}/${r.txn_id} (${Number(r.decisions)} decisions)`);
    }
  }
  const n = keys.length.toLocaleString("en-US");
  if (missing.length === 0 && twice.length === 0)
    return { id: "I3", ok: true, detail: `${n} acknowledged txns, each with exactly one stored decision` };
  const problems = [
    ...(missing.length > 0
      ? [`${missing.length} of ${n} acknowledged txns have no decision, e.g. ${missing.slice(0, 3).join(", ")}`]
      : []),
    ...(twice.length > 0
      ? [`${twice.length} of ${n} acknowledged txns were decided more than once, e.g. ${twice.slice(0, 3).join(", ")}`]
      : []),
  ];
  return { id: "I3", ok: false, detail: problems.join("; ") };
}
