import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";

describe("createLogger", () => {
  it("never writes payer ids, signatures or secrets, at any depth it is given them", () => {
    const lines: string[] = [];
    const log = createLogger("test", "info", { write: (line: string) => void lines.push(line) });
    log.info({ payerId: "P-SECRET-1" }, "top");
    log.info({ attempt: { payment: { payerId: "P-SECRET-2", txnId: "t-1" } } }, "nested");
    log.error({ err: { attempt: { payment: { payerId: "P-SECRET-3" } } } }, "deep");
    log.info({ req: { headers: { "x-quanta-signature": "t=1,v1=SIG-SECRET" } } }, "request");
    log.info({ config: { QUANTA_ACQUIRER_SECRETS: "acq=SECRET-VALUE" }, secret: "S" }, "config");
    const text = lines.join("");
    expect(lines).toHaveLength(5);
    for (const leaked of ["P-SECRET-1", "P-SECRET-2", "P-SECRET-3", "SIG-SECRET", "SECRET-VALUE", '"secret":"S"']) expect(text).not.toContain(leaked);
    expect(text).toContain("t-1"); // txn ids are not personal data and stay for tracing
    expect(text.match(/\[redacted\]/g)?.length).toBe(6);
  });
});
