import { transientClass, type RetryOptions } from "./retry.js";

/**
 * Retries for writes whose answer tells an outsider "accepted" or "nothing was accepted".
 *
 * A write that failed may still have committed: the connection broke after the server received
 * it (the COMMIT landed, its reply did not). Answering such a failure 503 breaks the contract's
 * "a 5xx means nothing was accepted". So each failure is sorted:
 *   - proved not committed: the server answered the statement with an error (it rolled back), or
 *     the statement never left (no connection could be made);
 *   - maybe committed: anything else (the connection ended with the statement in flight).
 * States: retrying (like withRetry, attemptsMax tries) -> done | refused (every failure proved
 * nothing committed: the last error is thrown, the caller may say "nothing accepted") | settling
 * (some try may have committed: the write is retried, being idempotent, until it succeeds or
 * settleMs have passed since the first failure) -> done | unknown (OutcomeUnknownError).
 * Trade-off: a caller whose write may have landed waits up to settleMs longer for Postgres,
 * instead of answering at once something that may be false (docs/decisions/0012).
 */
export class OutcomeUnknownError extends Error {
  override readonly name = "OutcomeUnknownError";
  readonly code = "outcome_unknown";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** SQLSTATEs that end a session rather than answer the statement: the statement may have committed first. */
const SESSION_ENDING = new Set(["57P01", "57P02", "25P03"]);

/** Errors of making a connection: the statement was never sent. */
const NEVER_SENT_MESSAGES = ["timeout exceeded when trying to connect", "ECONNREFUSED"];

/** True when the error proves that the failed statement did not commit. */
export function provedNotCommitted(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown };
  if (typeof e?.code === "string") {
    if (e.code === "ECONNREFUSED") return true;
    // A SQLSTATE from the server answering the statement: it failed, and an autocommit statement
    // or a transaction that failed rolled back. Class 08 and the session-ending ones say nothing.
    if (/^[0-9A-Z]{5}$/.test(e.code) && !e.code.startsWith("08") && !SESSION_ENDING.has(e.code)) return true;
  }
  const message = typeof e?.message === "string" ? e.message : "";
  return NEVER_SENT_MESSAGES.some((m) => message.includes(m));
}

export interface SettlingRetryOptions extends RetryOptions {
  /** How long after its first maybe-committed failure a write is retried to learn its outcome. */
  settleMs: number;
  /** Called once when a write enters settling (for a metric or a log). */
  onSettling?: (error: unknown) => void;
}

export async function withSettlingRetry<T>(work: () => Promise<T>, options: SettlingRetryOptions): Promise<T> {
  let settlingSinceMs: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const cls = transientClass(error);
      if (settlingSinceMs === undefined && !provedNotCommitted(error)) {
        settlingSinceMs = performance.now();
        options.onSettling?.(error);
      }
      if (settlingSinceMs === undefined) {
        // Nothing committed so far: the usual bounded retries, then the error itself.
        if (cls === undefined || attempt >= options.attemptsMax) throw error;
      } else if (cls === undefined || performance.now() - settlingSinceMs >= options.settleMs) {
        throw new OutcomeUnknownError(
          `a write that may have committed could not be confirmed within ${options.settleMs} ms`,
          { cause: error },
        );
      }
      if (cls !== undefined) options.onRetry?.(cls, attempt, error);
      const ceiling = Math.min(options.delayMaxMs, options.baseDelayMs * 2 ** Math.min(attempt - 1, 20));
      await new Promise((r) => setTimeout(r, ceiling / 2 + Math.random() * (ceiling / 2)));
    }
  }
}
