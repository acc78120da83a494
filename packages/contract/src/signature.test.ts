import { describe, expect, it } from "vitest";
import { parseAcquirerSecrets, sign, verifySignature } from "./signature.js";
import { parsePaymentBody, paymentHash } from "./payment-body.js";

const secret = "0123456789abcdef-secret";
const body = Buffer.from(
  '{"txnId":"t1","payerId":"p1","merchantId":"M-0001","amountFen":250000,"paidAt":"2020-09-13T10:00:01+08:00"}',
);
const nowMs = 1_600_000_000_000;

describe("signature", () => {
  it("accepts its own signature and refuses tampering, wrong secrets and garbage", () => {
    const header = sign(secret, nowMs / 1000, body);
    expect(header).toMatch(/^t=1600000000,v1=[0-9a-f]{64}$/);
    expect(verifySignature(header, secret, body, nowMs)).toEqual({ ok: true });
    expect(verifySignature(header, secret, Buffer.concat([body, Buffer.from(" ")]), nowMs)).toEqual({
      ok: false,
      code: "bad_signature",
    });
    expect(verifySignature(header, `${secret}x`, body, nowMs)).toEqual({ ok: false, code: "bad_signature" });
    expect(verifySignature(header.toUpperCase(), secret, body, nowMs).ok).toBe(false);
    expect(verifySignature(undefined, secret, body, nowMs).ok).toBe(false);
    expect(verifySignature("t=1600000000", secret, body, nowMs).ok).toBe(false);
    expect(verifySignature(header.slice(0, -2), secret, body, nowMs).ok).toBe(false);
  });

  it("refuses timestamps more than 300 s away, either side", () => {
    const at = (t: number) => verifySignature(sign(secret, t, body), secret, body, nowMs);
    expect(at(nowMs / 1000 - 300)).toEqual({ ok: true });
    expect(at(nowMs / 1000 - 301)).toEqual({ ok: false, code: "stale_timestamp" });
    expect(at(nowMs / 1000 + 301)).toEqual({ ok: false, code: "stale_timestamp" });
  });

  it("parses QUANTA_ACQUIRER_SECRETS and refuses weak or malformed entries", () => {
    expect([...parseAcquirerSecrets("unionpay=0123456789abcdef, other=fedcba9876543210xx")]).toEqual([
      ["unionpay", "0123456789abcdef"],
      ["other", "fedcba9876543210xx"],
    ]);
    expect(() => parseAcquirerSecrets("a=short")).toThrow(/shorter than 16/);
    expect(() => parseAcquirerSecrets("")).toThrow(/no acquirer/);
    expect(() => parseAcquirerSecrets("bad id=0123456789abcdef")).toThrow(/bad acquirer id/);
  });
});

describe("payment body", () => {
  it("parses the contract's body and names the bad field", () => {
    const ok = parsePaymentBody(body);
    expect(ok).toMatchObject({
      ok: true,
      payment: { txnId: "t1", amountFen: 250_000, paidAtMs: Date.parse("2020-09-13T02:00:01Z") },
    });
    const bad = (json: string) => parsePaymentBody(Buffer.from(json));
    expect(bad("{")).toMatchObject({ ok: false });
    expect(bad("[]")).toMatchObject({ ok: false });
    expect(
      bad('{"txnId":"t1","payerId":"p1","merchantId":"M","amountFen":"100","paidAt":"2020-09-13T10:00:01Z"}'),
    ).toMatchObject({ ok: false, field: "amountFen" });
    expect(
      bad('{"txnId":"t1","payerId":"p1","merchantId":"M","amountFen":1.5,"paidAt":"2020-09-13T10:00:01Z"}'),
    ).toMatchObject({ field: "amountFen" });
    expect(
      bad('{"txnId":"t1","payerId":"p1","merchantId":"M","amountFen":100000001,"paidAt":"2020-09-13T10:00:01Z"}'),
    ).toMatchObject({ field: "amountFen" });
    expect(
      bad('{"txnId":"t 1","payerId":"p1","merchantId":"M","amountFen":1,"paidAt":"2020-09-13T10:00:01Z"}'),
    ).toMatchObject({ field: "txnId" });
    expect(
      bad('{"txnId":"t1","payerId":"p1","merchantId":"M","amountFen":1,"paidAt":"2020-09-13T10:00:01"}'),
    ).toMatchObject({ field: "paidAt" });
    expect(
      bad('{"txnId":"t1","payerId":"p1","merchantId":"M","amountFen":1,"paidAt":"2020-02-30T10:00:01Z"}'),
    ).toMatchObject({ field: "paidAt" });
    expect(bad('{"payerId":"p1","merchantId":"M","amountFen":1,"paidAt":"2020-09-13T10:00:01Z"}')).toMatchObject({
      field: "txnId",
    });
    expect(
      bad(
        `{"txnId":"${"x".repeat(65)}","payerId":"p1","merchantId":"M","amountFen":1,"paidAt":"2020-09-13T10:00:01Z"}`,
      ),
    ).toMatchObject({ field: "txnId" });
  });

  it("hashes the payment, not its spelling", () => {
    const a = parsePaymentBody(body);
    const b = parsePaymentBody(
      Buffer.from(
        '{ "paidAt":"2020-09-13T02:00:01Z","amountFen":250000,"merchantId":"M-0001","payerId":"p1","txnId":"t1","extra":1}',
      ),
    );
    const c = parsePaymentBody(Buffer.from(body.toString().replace("250000", "250001")));
    if (!a.ok || !b.ok || !c.ok) throw new Error("parse failed");
    expect(paymentHash(a.payment)).toBe(paymentHash(b.payment));
    expect(paymentHash(a.payment)).not.toBe(paymentHash(c.payment));
  });
});
