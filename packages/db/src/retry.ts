/**
 * Transient Postgres failures and how they are retried.
 *
 * A retried unit of work must be idempotent: the worker's batch re-reads the
 * decisions already stored before deciding anything, so a commit whose
 * outcome was lost (connection dropped during COMMIT) is settled by reading
 * back, never by deciding twice.
 */
const RETRYABLE_SQLSTATES: Record<string, string> = {
  "40001": "serialization_failure",
  "40P01": "deadlock_detected",
  "23505": "unique_violation", // a concurrent writer stored the same txn or grant: re-read and answer from it
  "55P03": "lock_not_available",
  "57014": "query_canceled", // statement_timeout under load
  "25P03": "idle_in_transaction_session_timeout", // the server ended a session frozen inside a transaction
  "57P01": "admin_shutdown",
  "57P02": "crash_shutdown",
  "57P03": "cannot_connect_now",
  "53300": "too_many_connections",
  "08000": "connection_exception",
  "08001": "sqlclient_unable_to_establish_sqlconnection",
  "08003": "connection_does_not_exist",
  "08004": "sqlserver_rejected_establishment_of_sqlconnection",
  "08006": "connection_failure",
};

const RETRYABLE_MESSAGES = [
  "Connection terminated",
  "connection timeout",
  "timeout exceeded when trying to connect",
  "Client has encountered a connection error",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
];

/** The retry class of an error ("deadlock_detected", "connection", …), or undefined when it is not transient. */
export function transientClass(error: unknown): string | undefined {
  const e = error as { code?: unknown; message?: unknown };
  if (typeof e?.code === "string") {
    if (RETRYABLE_SQLSTATES[e.code]) return RETRYABLE_SQLSTATES[e.code];
    if (["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT"].includes(e.code)) return "connection";
  }
  const message = typeof e?.message === "string" ? e.message : "";
  return RETRYABLE_MESSAGES.some((m) => message.includes(m)) ? "connection" : undefined;
}

export interface RetryOptions {
  attemptsMax: number;
  baseDelayMs: number;
  delayMaxMs: number;
  onRetry?: (cls: string, attempt: number, error: unknown) => void;
}

export const DEFAULT_RETRY: RetryOptions = { attemptsMax: 8, baseDelayMs: 10, delayMaxMs: 2_000 };

export async function withRetry<T>(work: () => Promise<T>, options: RetryOptions = DEFAULT_RETRY): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const cls = transientClass(error);
      if (cls === undefined || attempt >= options.attemptsMax) throw error;
      options.onRetry?.(cls, attempt, error);
      const ceiling = Math.min(options.delayMaxMs, options.baseDelayMs * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, ceiling / 2 + Math.random() * (ceiling / 2)));
    }
  }
}
