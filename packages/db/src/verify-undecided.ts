import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * I3 from the caller's side: every acknowledged (200/202) txn has exactly one
 * stored decision. Returns the keys that have none.
 */
export async function undecided(
  db: Kysely<Database>,
  acknowledged: readonly { acquirerId: string; txnId: string }[],
): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < acknowledged.length; i += 10_000) {
    const slice = acknowledged.slice(i, i + 10_000);
    const rows = await sql<{ acquirer_id: string; txn_id: string }>`
      select k.acquirer_id, k.txn_id
        from unnest(${slice.map((k) => k.acquirerId)}::text[], ${slice.map((k) => k.txnId)}::text[]) as k(acquirer_id, txn_id)
       where not exists (select 1 from attempts a where a.acquirer_id = k.acquirer_id and a.txn_id = k.txn_id)`.execute(
      db,
    );
    for (const r of rows.rows) missing.push(`${r.acquirer_id}/${r.txn_id}`);
  }
  return missing;
}

/**
 * Polls until every acknowledged txn has a stored decision or timeoutMs has
 * passed; returns the keys still undecided (empty when the backlog drained).
 */
export async function waitUntilDecided(
  db: Kysely<Database>,
  acknowledged: readonly { acquirerId: string; txnId: string }[],
  options: { timeoutMs: number; pollMs: number; onWait?: (missing: number) => void },
): Promise<string[]> {
  const deadline = Date.now() + options.timeoutMs;
  let missing = await undecided(db, acknowledged);
  while (missing.length > 0 && Date.now() < deadline) {
    options.onWait?.(missing.length);
    await new Promise((r) => setTimeout(r, options.pollMs));
    missing = await undecided(db, acknowledged);
  }
  return missing;
}
