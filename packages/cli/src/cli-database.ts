import { connect } from "@quanta/db";
import type { CommandInput } from "./cli-args.js";

/**
 * The connection a one-shot command (settle, verify) reads DATABASE_URL through, closed when the
 * command is done. Statements may run five minutes: a large campaign's invariants or settlement
 * are long reads, and an operator waits for them rather than retries.
 */
export async function withCommandDatabase<T>(
  env: CommandInput["env"],
  applicationName: string,
  use: (db: ReturnType<typeof connect>) => Promise<T>,
): Promise<T> {
  const db = connect({ connectionString: env.DATABASE_URL, poolMax: 2, statementTimeoutMs: 300_000, applicationName });
  try {
    return await use(db);
  } finally {
    await db.close();
  }
}
