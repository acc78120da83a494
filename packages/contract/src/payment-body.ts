import { createHash } from "node:crypto";
import { z } from "zod";
import type { Payment } from "@quanta/domain";

/** The POST body as the contract defines it; unknown extra fields are ignored. */
const id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1-64 chars of [A-Za-z0-9_-]");
const ISO_WITH_OFFSET = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export const paymentBodySchema = z.object({
  txnId: id,
  payerId: id,
  merchantId: id,
  amountFen: z.number().int("must be an integer number of fen").min(1).max(100_000_000),
  paidAt: z.string().max(64).refine(isRealIsoDateTime, "ISO-8601 date-time with an offset"),
});

export const TXN_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function isRealIsoDateTime(s: string): boolean {
  const m = ISO_WITH_OFFSET.exec(s);
  if (!m) return false;
  const [, y, mo, d, h, mi, se] = m.map(Number) as number[];
  if (mo! < 1 || mo! > 12 || h! > 23 || mi! > 59 || se! > 59) return false;
  const daysInMonth = new Date(Date.UTC(y!, mo!, 0)).getUTCDate();
  return d! >= 1 && d! <= daysInMonth && Number.isFinite(Date.parse(s));
}

export type ParsedBody = { ok: true; payment: Payment } | { ok: false; message: string; field?: string };

export function parsePaymentBody(raw: Buffer): ParsedBody {
  const parsed = parseJsonBody(raw, paymentBodySchema);
  if (!parsed.ok) return parsed;
  const b = parsed.value;
  return {
    ok: true,
    payment: {
      txnId: b.txnId,
      payerId: b.payerId,
      merchantId: b.merchantId,
      amountFen: b.amountFen,
      paidAtMs: Date.parse(b.paidAt),
    },
  };
}

/**
 * A callback body: a JSON object checked against its schema. A failure names the first field at
 * fault (the contract's 400 `invalid_body` with `field`).
 */
export function parseJsonBody<T>(
  raw: Buffer,
  schema: z.ZodType<T>,
): { ok: true; value: T } | { ok: false; message: string; field?: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    return { ok: false, message: "body is not valid JSON" };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return { ok: false, message: "body must be a JSON object" };
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.map(String).join(".");
    return { ok: false, message: field ? `${field}: ${issue.message}` : issue.message, ...(field ? { field } : {}) };
  }
  return { ok: true, value: result.data };
}

/**
 * "Same body" means the same payment: the five fields, with paidAt as an
 * instant (so "+08:00" and "Z" spellings of one instant match). Whitespace,
 * key order and ignored extra fields do not make a retry a conflict.
 */
export function paymentHash(p: Payment): string {
  return createHash("sha256")
    .update(`${p.txnId}\n${p.payerId}\n${p.merchantId}\n${p.amountFen}\n${p.paidAtMs}`)
    .digest("base64url")
    .slice(0, 22);
}
