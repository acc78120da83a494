import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { closeSettlementDay, settlement, settlementCsv, settlementDay } from "@quanta/db";
import { SEED_CAMPAIGN_PATH, readCampaignFile } from "@quanta/cli";
import { type TestWorld, startInProcessStack, type InProcessStack, testCampaign } from "@quanta/test-kit";
import type { CallbackClient } from "@quanta/loadtest";

/**
 * Settlement (issue #7) reconciles exactly with the decision records: after 600 payments over
 * two days and several merchants through the real ingress and worker, the per-merchant-per-day
 * rows recomputed here from the stored attempts equal `settlement()`'s, their sum equals every
 * granted discount, the CSV says the same, and `quanta settle` writes it. A settled day (issue #19
 * item 6) never changes: a refund or payment that comes in for it afterwards is booked on the
 * day it arrived, as an adjustment naming the settled day and the item.
 */
const CLI = fileURLToPath(new URL("../../../packages/cli/dist/main.js", import.meta.url));
let stack: InProcessStack;
let world: TestWorld;
let client: CallbackClient;
let dir: string;

const closing = testCampaign(
  { id: "settle-close", name: "days settled one by one", budgetFen: 1_000_000 },
  { id: "C", name: "close", merchants: ["C-1", "C-2"] },
  [{ id: "C-only", thresholdFen: 10_000, discountFen: 1_000, quota: 20 }],
);
const settle = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, "settle", ...args], {
    env: { ...process.env, DATABASE_URL: world.databaseUrl },
    encoding: "utf8",
  });

beforeAll(async () => {
  stack = await startInProcessStack("settle", {
    workers: 1,
    connections: 32,
    campaigns: [readCampaignFile(SEED_CAMPAIGN_PATH), closing],
  });
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
      JSON.stringify({
        txnId: `s-${i}`,
        payerId: `s-payer-${i % 450}`,
        merchantId: merchants[i % merchants.length],
        amountFen: 8_000 + ((i * 7_919) % 300_000),
        paidAt: paidAt[i % paidAt.length],
      }),
    );
    for (let i = 0; i < bodies.length; i += 100) {
      const answers = await Promise.all(bodies.slice(i, i + 100).map((b) => client.postPayment(b)));
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    }

    const s = await settlement(world.db.kysely, "qianan-2020-b2");
    const granted = await world.db.kysely
      .selectFrom("attempts")
      .select(["merchant_id", "paid_at", "discount_fen"])
      .where("status", "=", "granted")
      .execute();
    expect(granted.length).toBeGreaterThan(100);
    const expected = new Map<string, { vouchers: number; fen: number }>();
    for (const g of granted) {
      const day = new Date(new Date(g.paid_at).getTime() + 8 * 3_600_000).toISOString().slice(0, 10);
      const key = `${day} ${g.merchant_id}`;
      const e = expected.get(key) ?? { vouchers: 0, fen: 0 };
      expected.set(key, { vouchers: e.vouchers + 1, fen: e.fen + g.discount_fen! });
    }
    expect(new Map(s.rows.map((r) => [`${r.day} ${r.merchantId}`, { vouchers: r.vouchers, fen: r.netFen }]))).toEqual(
      expected,
    );
    expect(new Set(s.rows.map((r) => r.day))).toEqual(new Set(["2020-09-13", "2020-09-14"]));
    const total = granted.reduce((n, g) => n + g.discount_fen!, 0);
    expect([s.grantedVouchers, s.grantedFen, s.netSpentFen, s.refundedFen]).toEqual([granted.length, total, total, 0]);
    expect(s.leftoverFen).toBe(s.budgetFen - total);

    const csv = settlementCsv(s).trim().split("\r\n");
    expect(csv[0]).toBe(
      "day,merchant_id,vouchers,discount_fen,vouchers_returned,refunded_fen,net_fen,net_cny,adjusts_day,acquirer_id,txn_id,refund_id",
    );
    expect(csv.slice(1).reduce((n, line) => n + Number(line.split(",")[6]), 0)).toBe(total);

    const r = spawnSync(process.execPath, [CLI, "settle", "--campaign", "qianan-2020-b2", "--out", dir], {
      env: { ...process.env, DATABASE_URL: world.databaseUrl },
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/leftover, returned to the funding bureau/);
    expect(readFileSync(join(dir, "settlement-qianan-2020-b2.csv"), "utf8")).toBe(settlementCsv(s));
    expect(JSON.parse(readFileSync(join(dir, "settlement-qianan-2020-b2.json"), "utf8"))).toMatchObject({
      grantedFen: total,
      leftoverFen: s.budgetFen - total,
    });
  });

  it("never changes a settled day: what comes in for it later is an adjustment on the day it arrived", async () => {
    const db = world.db.kysely;
    const C = closing.id;
    const pay = (txnId: string, merchantId: string, paidAt: string) =>
      client.postPayment(JSON.stringify({ txnId, payerId: `${txnId}-payer`, merchantId, amountFen: 12_000, paidAt }));
    const refund = (refundId: string, txnId: string, refundedAt: string) =>
      client.postRefund(JSON.stringify({ refundId, txnId, amountFen: 12_000, refundedAt }));
    expect((await pay("c-1", "C-1", "2020-09-13T10:00:00+08:00")).body).toMatchObject({ status: "granted" });
    expect((await pay("c-2", "C-2", "2020-09-13T11:00:00+08:00")).body).toMatchObject({ status: "granted" });
    expect((await pay("c-3", "C-1", "2020-09-14T10:00:00+08:00")).body).toMatchObject({ status: "granted" });
    expect((await refund("rc-1", "c-1", "2020-09-13T12:00:00+08:00")).body).toMatchObject({
      status: "voucher_returned",
    });
    const open = await settlementDay(db, C, "2020-09-13");
    expect(open).toMatchObject({
      closedAt: null,
      grantedVouchers: 2,
      grantedFen: 2_000,
      returnedVouchers: 1,
      refundedFen: 1_000,
      netFen: 1_000,
      adjustments: [],
    });

    // Settled by the operator's command; the files it writes are the day's report for good.
    const closed = settle("--campaign", C, "--day", "2020-09-13", "--close", "--out", dir);
    expect(closed.status, closed.stderr).toBe(0);
    expect(closed.stdout).toMatch(/settled at .*: these figures never change/);
    const closedCsv = readFileSync(join(dir, "settlement-settle-close-2020-09-13.csv"), "utf8");
    const closedJson = readFileSync(join(dir, "settlement-settle-close-2020-09-13.json"), "utf8");
    expect(closedCsv).toBe(settlementCsv(open));

    // Back-dated to the settled day and arriving now: a refund of c-2 (within its bounds: after the payment) and a payment.
    expect((await refund("rc-2", "c-2", "2020-09-13T15:00:00+08:00")).body).toMatchObject({
      status: "voucher_returned",
    });
    expect((await pay("c-4", "C-2", "2020-09-13T16:00:00+08:00")).body).toMatchObject({ status: "granted" });

    // The settled day is the same to the byte, read again or closed again.
    const again = await settlementDay(db, C, "2020-09-13");
    expect(settlementCsv(again)).toBe(closedCsv);
    expect(`${JSON.stringify(again, null, 2)}\n`).toBe(closedJson);
    const reread = settle("--campaign", C, "--day", "2020-09-13", "--out", join(dir, "reread"));
    expect(reread.status, reread.stderr).toBe(0);
    expect(readFileSync(join(dir, "reread", "settlement-settle-close-2020-09-13.csv"), "utf8")).toBe(closedCsv);
    expect(await closeSettlementDay(db, C, "2020-09-13")).toEqual({ kind: "already_settled", report: again });

    // Each is booked on the day it arrived by the server's clock (the refund's received_at, the
    // grant's decided_at), an adjustment naming the settled day and the item.
    const arrival = (
      await sql<{ refund_day: string; grant_day: string }>`
        select (select to_char(received_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD') from refunds where refund_id = 'rc-2') as refund_day,
               (select to_char(decided_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD') from attempts where txn_id = 'c-4') as grant_day`.execute(
        db,
      )
    ).rows[0]!;
    expect(arrival.refund_day > "2020-09-13" && arrival.grant_day > "2020-09-13").toBe(true);
    const refundAdjustment = {
      day: arrival.refund_day,
      adjustsDay: "2020-09-13",
      merchantId: "C-2",
      acquirerId: world.acquirerId,
      txnId: "c-2",
      refundId: "rc-2",
      vouchers: 0,
      discountFen: 0,
      vouchersReturned: 1,
      refundedFen: 1_000,
      netFen: -1_000,
    };
    const grantAdjustment = {
      day: arrival.grant_day,
      adjustsDay: "2020-09-13",
      merchantId: "C-2",
      acquirerId: world.acquirerId,
      txnId: "c-4",
      refundId: null,
      vouchers: 1,
      discountFen: 1_000,
      vouchersReturned: 0,
      refundedFen: 0,
      netFen: 1_000,
    };
    const onRefundDay = await settlementDay(db, C, arrival.refund_day);
    expect(onRefundDay.adjustments).toContainEqual(refundAdjustment);
    expect(settlementCsv(onRefundDay)).toContain(
      `\r\n${arrival.refund_day},C-2,0,0,1,1000,-1000,-10.00,2020-09-13,${world.acquirerId},c-2,rc-2\r\n`,
    );
    expect((await settlementDay(db, C, arrival.grant_day)).adjustments).toContainEqual(grantAdjustment);
    // The campaign's next day, open, holds only its own; a refund dated on an open day is booked there, as before.
    expect(await settlementDay(db, C, "2020-09-14")).toMatchObject({
      grantedVouchers: 1,
      returnedVouchers: 0,
      adjustments: [],
    });
    expect((await refund("rc-3", "c-3", "2020-09-15T09:00:00+08:00")).body).toMatchObject({
      status: "voucher_returned",
    });
    expect(await settlementDay(db, C, "2020-09-15")).toMatchObject({
      grantedVouchers: 0,
      returnedVouchers: 1,
      refundedFen: 1_000,
      adjustments: [],
    });

    // The campaign's settlement still reconciles: the settled day's rows as settled, the late items as adjustments.
    const s = await settlement(db, C);
    expect(s.rows.filter((r) => r.day === "2020-09-13")).toEqual(again.rows);
    expect(s.adjustments).toEqual(expect.arrayContaining([refundAdjustment, grantAdjustment]));
    expect(s.adjustments).toHaveLength(2);
    expect([s.grantedVouchers, s.grantedFen, s.returnedVouchers, s.refundedFen, s.netSpentFen]).toEqual([
      4, 4_000, 3, 3_000, 1_000,
    ]);

    // A day that is not over is not settled.
    const tomorrow = (
      await sql<{
        day: string;
      }>`select to_char((now() at time zone 'Asia/Shanghai')::date + 1, 'YYYY-MM-DD') as day`.execute(db)
    ).rows[0]!.day;
    expect(await closeSettlementDay(db, C, tomorrow)).toMatchObject({ kind: "not_over" });
    const early = settle("--campaign", C, "--day", tomorrow, "--close", "--out", dir);
    expect(early.status).toBe(1);
    expect(early.stderr).toMatch(/is not over until .*: nothing was settled/);
    expect(
      Number(
        (await sql<{ n: string }>`select count(*) as n from settled_days where campaign_id = ${C}`.execute(db)).rows[0]!
          .n,
      ),
    ).toBe(1);

    // Should the arrival day itself be settled (a day closed under a wrong clock), what has no entry
    // moves to the first open day after it: never onto a settled day, never lost.
    await sql`insert into settled_days (campaign_id, day) values (${C}, ${arrival.refund_day}::date)`.execute(db);
    const dayAfter = (
      await sql<{ day: string }>`select to_char(${arrival.refund_day}::date + 1, 'YYYY-MM-DD') as day`.execute(db)
    ).rows[0]!.day;
    expect((await settlementDay(db, C, dayAfter)).adjustments).toContainEqual({ ...refundAdjustment, day: dayAfter });
    expect(settlementCsv(await settlementDay(db, C, "2020-09-13"))).toBe(closedCsv);
    expect((await settlement(db, C)).refundedFen).toBe(3_000);
  });
});
