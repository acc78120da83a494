/**
 * What a log line must never carry, found at any depth of what is logged: payer ids (either
 * spelling: `payerId` in the code, `payer_id` in rows), secrets, tokens and signatures, and the
 * values Postgres quotes in an error's detail ("Key (payer_id, …)=(…) already exists",
 * "Failing row contains (…)"), which name a row's payer.
 * Inputs: any value a log call is given. Errors become plain objects (type, message, stack, their
 * own fields) so that their fields are walked too. Cycles are cut; depth is bounded (a log line
 * nested past DEPTH_MAX levels says so instead of printing the rest).
 * Trade-off: every logged object is copied once; log lines are few next to callbacks.
 */
export const CENSOR = "[redacted]";

const SECRET_KEYS = new Set([
  "payerid",
  "payer_id",
  "secret",
  "secrets",
  "token",
  "tokens",
  "authorization",
  "x-quanta-signature",
  "quanta_acquirer_secrets",
  "quanta_admin_tokens",
  "quanta_payer_key",
]);

/** Keys whose text Postgres fills with a row's values. */
const QUOTING_KEYS = new Set(["detail", "where", "hint"]);

const DEPTH_MAX = 64;

/** Postgres quotes values as `=(…)` (a key) or `contains (…)` (a failing row): keep the words, drop the values. */
export function redactQuotedValues(text: string): string {
  return text.replace(/(=|contains )\((.*)\)/gs, `$1(${CENSOR})`);
}

export function redactDeep(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[cycle]";
  if (depth >= DEPTH_MAX) return `[deeper than ${DEPTH_MAX} levels]`;
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1, seen));
  const source: Record<string, unknown> =
    value instanceof Error
      ? {
          type: value.name,
          message: value.message,
          stack: value.stack,
          ...(value as unknown as Record<string, unknown>),
          ...(value.cause === undefined ? {} : { cause: value.cause }),
        }
      : (value as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(source)) {
    const lower = key.toLowerCase();
    if (SECRET_KEYS.has(lower)) out[key] = CENSOR;
    else if (QUOTING_KEYS.has(lower) && typeof v === "string") out[key] = redactQuotedValues(v);
    else out[key] = redactDeep(v, depth + 1, seen);
  }
  return out;
}
