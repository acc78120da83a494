import { describe, expect, it } from "vitest";
import pg from "pg";
import { pgCapacity } from "@quanta/cli";

/**
 * `quanta pg-capacity` runs the worker's own rounds against a private database it drops after:
 * a short run yields one row per setting with commits, decisions and WAL it really measured.
 */
describe("quanta pg-capacity", () => {
  it("measures commits, decisions and WAL of real decision rounds, then drops its database", async () => {
    const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
    const lines: string[] = [];
    const rows = await pgCapacity({
      databaseUrl,
      roundSizes: [20],
      concurrencies: [1, 2],
      seconds: 1,
      out: (l) => lines.push(l),
    });
    expect(rows.map((r) => [r.roundSize, r.partitions])).toEqual([
      [20, 1],
      [20, 2],
    ]);
    for (const r of rows) {
      expect(r.roundsPerS).toBeGreaterThan(0);
      // Every round decides its 20 attempts, in one commit or more (a refill is a commit of its own).
      expect(r.decisionsPerS / r.roundsPerS).toBeCloseTo(20, 5);
      expect(r.commitsPerS).toBeGreaterThanOrEqual(r.roundsPerS);
      expect(r.walBytesPerDecision).toBeGreaterThan(0);
    }
    expect(lines).toHaveLength(2);
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const left = await client.query("select datname from pg_database where datname like 'quanta_pgcap_%'");
      expect(left.rows).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
