import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { settlement, settlementCsv } from "@quanta/db";
import type { TestWorld } from "@quanta/cli";
import type { CallbackClient } from "@quanta/loadtest";
import { startInProcessStack, type InProcessStack } from "./in-process-stack.js";

/**
 * Settlement (issue #7) reconciles exactly with the decision records: after 600 payments over
 * two days and several merchants through the real ingress and worker, the per-merchant-per-day
 * rows recomputed here from the stored attempts equal `settlement()`'s, their sum equals every
 * granted discount, the CSV says the same, and `quanta settle` writes it.
 */
const CLI = fileURLToPath(new URL("../../../packages/cli/dist/main.js", import.meta.url));
let stack: InProcessStack;
let world: TestWorld;
let client: CallbackClient;
let dir: string;

beforeAll(async () => {
  stack = await startInProcessStack("settle", { workers: 1, connections: 32 });
  ({ world, client } = stack);
  dir = mkdtempSync(join(tmpdir(), "quanta-settle-"));
});

afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("settlement", () => {
  it("reconciles to the fen with the decision records, per merchant and day, and as CSV", async () => {
    const merchants = ["M-FLAGSHIP", "M-0001", "M-0002", "M-0003", "M-0417"];
    const paidAt = ["2020-09-13T23:59:59+08:00", "2020-09-14T00:00:00+08:00", "2020-09-13T16:30:00Z"]; // the last is 09-14 00:30 in UTC+8
    const bodies = Array.from({ length: 600 }, (_, i) =>
      JSON.stringify({ txnId: `s-${i}`, payerId: `s-payer-${i % 450}`, merchantId: merchants[i % merchants.length], amountFen: 8_000 + ((i * 7_919) % 300_000), paidAt: paidAt[i % paidAt.length] }),
    );
    for (let i = 0; i < bodies.length; i += 100) {
      const answers = await Promise.all(bodies.slice(i, i + 100).map((b) => client.postPayment(b)));
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    }

    const s = await settlement(world.db.kysely, "qianan-2020-b2");
    const granted = await world.db.kysely.selectFrom("attempts").select(["merchant_id", "paid_at", "discount_fen"]).where("status", "=", "granted").execute();
    expect(granted.length).toBeGreaterThan(100);
    const expected = new Map<string, { vouchers: number; fen: number }>();
    for (const g of granted) {
      const day = new Date(new Date(g.paid_at).getTime() + 8 * 3_600_000).toISOString().slice(0, 10);
      const key = `${day} ${g.merchant_id}`;
      const e = expected.get(key) ?? { vouchers: 0, fen: 0 };
      expected.set(key, { vouchers: e.vouchers + 1, fen: e.fen + g.discount_fen! });
    }
    expect(new Map(s.rows.map((r) => [`${r.day} ${r.merchantId}`, { vouchers: r.vouchers, fen: r.netFen }]))).toEqual(expected);
    expect(new Set(s.rows.map((r) => r.day))).toEqual(new Set(["2020-09-13", "2020-09-14"]));
    const total = granted.reduce((n, g) => n + g.discount_fen!, 0);
    expect([s.grantedVouchers, s.grantedFen, s.netSpentFen, s.refundedFen]).toEqual([granted.length, total, total, 0]);
    expect(s.leftoverFen).toBe(s.budgetFen - total);

    const csv = settlementCsv(s).trim().split("\r\n");
    expect(csv[0]).toBe("day,merchant_id,vouchers,discount_fen,vouchers_returned,refunded_fen,net_fen,net_cny");
    expect(csv.slice(1).reduce((n, line) => n + Number(line.split(",")[6]), 0)).toBe(total);

    const r = spawnSync(process.execPath, [CLI, "settle", "--campaign", "qianan-2020-b2", "--out", dir], { env: { ...process.env, DATABASE_URL: world.databaseUrl }, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/leftover, returned to the funding bureau/);
    expect(readFileSync(join(dir, "settlement-qianan-2020-b2.csv"), "utf8")).toBe(settlementCsv(s));
    expect(JSON.parse(readFileSync(join(dir, "settlement-qianan-2020-b2.json"), "utf8"))).toMatchObject({ grantedFen: total, leftoverFen: s.budgetFen - total });
  });
});
