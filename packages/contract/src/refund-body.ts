import { createHash } from "node:crypto";
import { z } from "zod";
import { isRealIsoDateTime, parseJsonBody } from "./payment-body.js";

/**
 * The refund callback's body (POST /v1/callbacks/refund), signed like a payment:
 * `{refundId, txnId, amountFen, refundedAt}`. amountFen is the part of the payment's amount
 * (`amountFen` of the payment, before any discount) given back by this refund. Unknown extra
 * fields are ignored.
 */
const id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1-64 chars of [A-Za-z0-9_-]");

export const refundBodySchema = z.object({
  refundId: id,
  txnId: id,
  amountFen: z.number().int("must be an integer number of fen").min(1).max(100_000_000),
  refundedAt: z.string().max(64).refine(isRealIsoDateTime, "ISO-8601 date-time with an offset"),
});

export interface Refund {
  readonly refundId: string;
  readonly txnId: string;
  readonly amountFen: number;
  readonly refundedAtMs: number;
}

export type ParsedRefund = { ok: true; refund: Refund } | { ok: false; message: string; field?: string };

export function parseRefundBody(raw: Buffer): ParsedRefund {
  const parsed = parseJsonBody(raw, refundBodySchema);
  if (!parsed.ok) return parsed;
  const b = parsed.value;
  return {
    ok: true,
    refund: { refundId: b.refundId, txnId: b.txnId, amountFen: b.amountFen, refundedAtMs: Date.parse(b.refundedAt) },
  };
}

/** "Same refund" means the same four fields, refundedAt as an instant (as for payments). */
export function refundHash(r: Refund): string {
  return createHash("sha256")
    .update(`refund\n${r.refundId}\n${r.txnId}\n${r.amountFen}\n${r.refundedAtMs}`)
    .digest("base64url")
    .slice(0, 22);
}
