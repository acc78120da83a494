import { describe, expect, it } from "vitest";
import { partitionOf, payerInPartition } from "./partition.js";

describe("payerInPartition", () => {
  it("finds, for every partition, the first payer id of the base that hashes to it", () => {
    for (const count of [1, 2, 4, 16]) {
      for (let p = 0; p < count; p++) {
        const payerId = payerInPartition("payer-", p, count);
        expect(partitionOf(payerId, count)).toBe(p);
        const i = Number(payerId.slice("payer-".length));
        for (let j = 0; j < i; j++) expect(partitionOf(`payer-${j}`, count)).not.toBe(p);
      }
    }
  });

  it("refuses a partition the count does not have", () => {
    expect(() => payerInPartition("payer-", 4, 4)).toThrow(RangeError);
    expect(() => payerInPartition("payer-", -1, 4)).toThrow(RangeError);
    expect(() => payerInPartition("payer-", 0, Number.NaN)).toThrow(RangeError);
    expect(() => payerInPartition("payer-", 0, 0)).toThrow(RangeError);
  });
});
