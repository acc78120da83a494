import { describe, expect, it } from "vitest";
import { CLOCK_SKEW_MS } from "@quanta/domain";
import { parseRefundBody, refundHash } from "./refund-body.js";
import { REPLAY_WINDOW_S } from "./signature.js";

const body = (o: Record<string, unknown>) => Buffer.from(JSON.stringify(o));
const valid = { refundId: "rf-1", txnId: "t-1", amountFen: 12_000, refundedAt: "2020-09-14T09:30:00+08:00" };

describe("parseRefundBody", () => {
  it("reads the four fields, ignoring extra ones", () => {
    expect(parseRefundBody(body({ ...valid, note: "x" }))).toEqual({
      ok: true,
      refund: { refundId: "rf-1", txnId: "t-1", amountFen: 12_000, refundedAtMs: Date.parse("2020-09-14T01:30:00Z") },
    });
  });

  it("names the field at fault", () => {
    expect(parseRefundBody(body({ ...valid, amountFen: 0 }))).toMatchObject({ ok: false, field: "amountFen" });
    expect(parseRefundBody(body({ ...valid, amountFen: 1.5 }))).toMatchObject({ ok: false, field: "amountFen" });
    expect(parseRefundBody(body({ ...valid, refundId: "a b" }))).toMatchObject({ ok: false, field: "refundId" });
    expect(parseRefundBody(body({ ...valid, refundedAt: "2020-02-30T00:00:00Z" }))).toMatchObject({
      ok: false,
      field: "refundedAt",
    });
    expect(parseRefundBody(body({ refundId: "r" }))).toMatchObject({ ok: false, field: "txnId" });
    expect(parseRefundBody(Buffer.from("[1]"))).toMatchObject({ ok: false, message: "body must be a JSON object" });
    expect(parseRefundBody(Buffer.from("{"))).toMatchObject({ ok: false, message: "body is not valid JSON" });
  });
});

describe("refundHash", () => {
  it("is the same for the same refund spelled differently, and differs when a field does", () => {
    const a = parseRefundBody(body(valid));
    const b = parseRefundBody(
      Buffer.from(`{ "refundedAt": "2020-09-14T01:30:00Z", "amountFen": 12000, "txnId": "t-1", "refundId": "rf-1" }`),
    );
    const c = parseRefundBody(body({ ...valid, amountFen: 12_001 }));
    if (!a.ok || !b.ok || !c.ok) throw new Error("expected valid bodies");
    expect(refundHash(a.refund)).toBe(refundHash(b.refund));
    expect(refundHash(a.refund)).not.toBe(refundHash(c.refund));
  });
});

describe("refundedAt's bounds", () => {
  it("allow a refund dated in the future by the skew the signature allows, and no more", () => {
    // The contract promises one clock skew for both: a signature's t and a refund's refundedAt.
    expect(CLOCK_SKEW_MS).toBe(REPLAY_WINDOW_S * 1000);
  });
});
