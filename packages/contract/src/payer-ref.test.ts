import { describe, expect, it } from "vitest";
import { parsePayerKey, payerRef } from "./payer-ref.js";

const key = parsePayerKey("k1:0123456789abcdef0123456789abcdef");

describe("payerRef", () => {
  it("is deterministic per key, differs between payers and between keys, and never contains the id", () => {
    const ref = payerRef(key, "P00001234");
    expect(ref).toMatch(/^k1_[A-Za-z0-9_-]{32}$/);
    expect(payerRef(key, "P00001234")).toBe(ref);
    expect(payerRef(key, "P00001235")).not.toBe(ref);
    expect(payerRef(parsePayerKey("k2:0123456789abcdef0123456789abcdef"), "P00001234")).not.toBe(ref);
    expect(payerRef(parsePayerKey("k1:fedcba9876543210fedcba9876543210"), "P00001234")).not.toBe(ref);
    expect(ref).not.toContain("P00001234");
  });

  it("refuses a missing, malformed or short key with a message naming the variable", () => {
    expect(() => parsePayerKey(undefined)).toThrow(/QUANTA_PAYER_KEY is required/);
    expect(() => parsePayerKey("nocolon0123456789abcdef0123456789abcdef")).toThrow(/id:secret/);
    expect(() => parsePayerKey("bad id:0123456789abcdef0123456789abcdef")).toThrow(/id:secret/);
    expect(() => parsePayerKey("k1:short")).toThrow(/shorter than 32/);
  });
});
