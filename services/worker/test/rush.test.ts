import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { rushWith } from "@quanta/cli";

/**
 * A concurrent rush of more than 20,000 signed attempts through the real HTTP
 * ingress, with two worker processes, demand above supply on every tier of
 * the seed campaign. Afterwards I1-I4 and I6 (and I5 for forged callbacks)
 * are checked in the database and through GET for every acknowledged txn.
 */
describe("a 20,000-attempt rush through separate processes", () => {
  it("sells every tier out exactly and keeps every invariant", { timeout: 600_000 }, async () => {
    const lines: string[] = [];
    const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;
    const report = await rushWith(
      {
        databaseUrl: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
        redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
        databaseName: `quanta_test_rush_${tag}`,
        prefix: `${process.env.QUANTA_TEST_REDIS_PREFIX ?? "quanta-test"}-rush-${tag}`,
        workers: 2,
        partitions: 4,
        seed: 7,
        drainTimeoutS: 300,
        getChecksMax: 100_000,
        keepDatabase: false,
        out: (line) => lines.push(line),
      },
      (s) => ({ ...s, durationS: 40, payers: 40_000, arrival: { peakRatePerS: 560, rampS: 2, plateauS: 38, endFraction: 1 } }),
    );
    if (!report.ok) console.log(report.text);
    const json = report.json as {
      acknowledged: number;
      getChecks: { asked: number; mismatches: number };
      tiers: { tierId: string; quota: number; granted: number; remaining: number }[];
      invariants: { id: string; ok: boolean }[];
      answers: Record<string, number>;
    };
    expect(json.acknowledged).toBeGreaterThanOrEqual(20_000);
    for (const tier of json.tiers) expect([tier.tierId, tier.granted, tier.remaining]).toEqual([tier.tierId, tier.quota, 0]);
    expect(json.answers["200 rejected sold_out"]).toBeGreaterThan(1_000);
    expect(json.invariants.map((c) => [c.id, c.ok])).toEqual([["budget", true], ["I1", true], ["I2", true], ["I3", true], ["I4", true], ["I5", true], ["I6", true]]);
    expect(json.getChecks.asked).toBeGreaterThanOrEqual(20_000);
    expect(json.getChecks.mismatches).toBe(0);
    expect(report.ok).toBe(true);
  });
});
