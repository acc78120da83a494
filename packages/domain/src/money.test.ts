import { describe, expect, it } from "vitest";
import { cnyToFen, formatFen, isFen } from "./money.js";
import { partitionOf } from "./partition.js";

describe("money", () => {
  it("keeps money in integer fen", () => {
    expect(cnyToFen(2000)).toBe(200_000);
    expect(cnyToFen(0.1 + 0.2)).toBe(30);
    expect(() => cnyToFen(0.001)).toThrow(RangeError);
    expect(isFen(1.5)).toBe(false);
    expect(isFen(2 ** 53)).toBe(false);
    expect(formatFen(200_000_000)).toBe("2,000,000.00");
    expect(formatFen(-5)).toBe("-0.05");
    expect(formatFen(123_456_789, { grouped: false })).toBe("1234567.89");
    expect(formatFen(-5, { grouped: false })).toBe("-0.05");
    expect(formatFen(1_005, { grouped: false })).toBe("10.05");
  });
});

describe("partitionOf", () => {
  it("is stable and spreads payers over every partition", () => {
    expect(partitionOf("P00000001", 8)).toBe(partitionOf("P00000001", 8));
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8_000; i++) counts[partitionOf(`P${i}`, 8)]++;
    for (const n of counts) expect(n).toBeGreaterThan(800);
  });
});
