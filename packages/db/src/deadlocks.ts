import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * The deadlocks Postgres detected in this database since it was created, read once every other
 * session has left (a backend publishes its counters when it exits, and may still be exiting
 * when the process that held it is gone). `ourApplications` are the caller's own sessions, which
 * stay. After timeoutMs the count is read anyway.
 */
export async function deadlocksOnceQuiet(
  db: Kysely<Database>,
  ourApplications: readonly string[],
  timeoutMs = 15_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const others = await sql<{ n: string }>`
      select count(*) as n from pg_stat_activity
       where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
         and not (application_name = any(${[...ourApplications]}::text[]))`.execute(db);
    if (Number(others.rows[0]!.n) === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const row = (
    await sql<{ n: string }>`select deadlocks as n from pg_stat_database where datname = current_database()`.execute(db)
  ).rows[0];
  return Number(row?.n ?? 0);
}
