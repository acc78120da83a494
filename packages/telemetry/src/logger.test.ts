import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { redactQuotedValues } from "./redact.js";

const capture = () => {
  const lines: string[] = [];
  return { lines, log: createLogger("test", "info", { write: (line: string) => void lines.push(line) }) };
};

describe("createLogger", () => {
  it("never writes payer ids, signatures or secrets, at any depth it is given them", () => {
    const { lines, log } = capture();
    log.info({ payerId: "P-SECRET-1" }, "top");
    log.info({ attempt: { payment: { payerId: "P-SECRET-2", txnId: "t-1" } } }, "nested");
    log.error({ err: { attempt: { payment: { payerId: "P-SECRET-3" } } } }, "deep");
    log.info({ req: { headers: { "x-quanta-signature": "t=1,v1=SIG-SECRET" } } }, "request");
    log.info(
      { config: { QUANTA_ACQUIRER_SECRETS: "acq=SECRET-VALUE", QUANTA_PAYER_KEY: "k1:KEY-SECRET" }, secret: "S" },
      "config",
    );
    const text = lines.join("");
    expect(lines).toHaveLength(5);
    for (const leaked of [
      "P-SECRET-1",
      "P-SECRET-2",
      "P-SECRET-3",
      "SIG-SECRET",
      "SECRET-VALUE",
      "KEY-SECRET",
      '"secret":"S"',
    ])
      expect(text).not.toContain(leaked);
    expect(text).toContain("t-1"); // txn ids are not personal data and stay for tracing
    expect(text.match(/\[redacted\]/g)?.length).toBe(7);
  });

  it("redacts the row spelling payer_id, fields deeper than any fixed path, arrays, errors' own fields, and child bindings", () => {
    const { lines, log } = capture();
    log.warn({ row: { payer_id: "P-ROW" } }, "row");
    log.warn({ a: { b: { c: { d: { e: { f: { g: { payerId: "P-DEEP" } } } } } } } }, "deep");
    log.warn({ batch: [{ payment: { payerId: "P-ARRAY" } }] }, "array");
    const error = Object.assign(new Error("job failed"), {
      job: { data: { attempts: [{ payment: { payerId: "P-ERROR" } }] } },
    });
    log.error({ err: error }, "error");
    log.child({ payerId: "P-CHILD" }).info("child");
    log
      .child({ service2: "x" })
      .child({ nested: { payer_id: "P-GRANDCHILD" } })
      .info("grandchild");
    const cyclic: Record<string, unknown> = { payerId: "P-CYCLE" };
    cyclic.self = cyclic;
    log.info({ cyclic }, "cycle");
    const text = lines.join("");
    expect(lines).toHaveLength(7);
    for (const leaked of ["P-ROW", "P-DEEP", "P-ARRAY", "P-ERROR", "P-CHILD", "P-GRANDCHILD", "P-CYCLE"])
      expect(text).not.toContain(leaked);
    expect(text).toContain("job failed");
  });

  it("drops the values Postgres quotes in an error's detail, keeping what the error is about", () => {
    const { lines, log } = capture();
    const unique = Object.assign(
      new Error('duplicate key value violates unique constraint "attempts_one_grant_per_payer"'),
      {
        code: "23505",
        detail: "Key (payer_id, campaign_id, activity_id)=(P-UNIQUE, qianan-2020-b2, A2) already exists.",
      },
    );
    const check = Object.assign(new Error('new row for relation "attempts" violates check constraint'), {
      code: "23514",
      detail: "Failing row contains (acq, t-9, P-CHECK, M-1).",
    });
    log.error({ err: unique }, "unique");
    log.error({ err: check }, "check");
    const text = lines.join("");
    expect(text).not.toContain("P-UNIQUE");
    expect(text).not.toContain("P-CHECK");
    expect(text).toContain("attempts_one_grant_per_payer");
    expect(text).toContain("Key (payer_id, campaign_id, activity_id)=([redacted]) already exists.");
    expect(redactQuotedValues("Failing row contains (a, b).")).toBe("Failing row contains ([redacted]).");
  });
});
