import { describe, expect, it } from "vitest";
import type { SentRecord } from "@quanta/loadtest";
import { copiesAgainstFirst } from "./answer-checks.js";

const body = (amountFen: number) =>
  JSON.stringify({ txnId: "t", payerId: "p", merchantId: "m", amountFen, paidAt: "2020-09-13T10:00:00+08:00" });
const rec = (
  kind: SentRecord["kind"],
  sentAtMs: number,
  status: number,
  amountFen: number,
  answer: unknown = null,
): SentRecord =>
  ({ kind, txnId: "t", body: body(amountFen), sentAtMs, ackMs: 5, status, answer, ingress: 0 }) as SentRecord;
const granted = { txnId: "t", status: "granted", tierId: "A2-20" };
const refused = { txnId: "t", status: "rejected", reason: "sold_out" };

describe("copiesAgainstFirst", () => {
  it("counts resends answered and conflicts answered 409 when every copy agrees", () => {
    const c = copiesAgainstFirst([
      rec("payment", 0, 200, 100, granted),
      rec("resend", 10, 200, 100, granted),
      rec("conflict", 20, 409, 999),
    ]);
    expect(c).toEqual({ resendsAnswered: 1, conflicts409: 1, wrong: [] });
  });

  it("flags a resend answered otherwise than the first time", () => {
    const c = copiesAgainstFirst([rec("payment", 0, 200, 100, granted), rec("resend", 10, 200, 100, refused)]);
    expect(c.wrong).toHaveLength(1);
  });

  it("flags another body accepted after the first was acknowledged, not one refused for overload", () => {
    expect(copiesAgainstFirst([rec("payment", 0, 202, 100), rec("conflict", 20, 202, 999)]).wrong).toHaveLength(1);
    expect(copiesAgainstFirst([rec("payment", 0, 202, 100), rec("conflict", 20, 503, 999)]).wrong).toEqual([]);
    // Sent before the first body's answer came: not judged here (answersAgainstStore judges it against the store).
    expect(copiesAgainstFirst([rec("payment", 0, 202, 100), rec("conflict", 1, 202, 999)]).wrong).toEqual([]);
  });
});
