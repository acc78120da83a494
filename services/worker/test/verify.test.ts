import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { createTestWorld, type TestWorld } from "@quanta/cli";
import { verifyDatabaseInvariants } from "@quanta/db";

/**
 * The checks that the rush, the tests and `quanta verify` rely on must be
 * able to fail. Each case breaks the database behind the application's back
 * (dropping the constraint that would otherwise stop it) and expects the
 * broken invariant to be reported.
 */
let world: TestWorld;
const campaign = "qianan-2020-b2";
const status = async () => Object.fromEntries((await verifyDatabaseInvariants(world.db.kysely, campaign)).map((c) => [c.id, c.ok]));
const insert = (txnId: string, payerId: string, fields: string) =>
  sql.raw(`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, partition, decided_by, ${fields.split("|")[0]})
           values ('acq', '${txnId}', 'h', '${payerId}', 'M-0001', 250000, now(), now(), 0, 'worker', ${fields.split("|")[1]})`);

beforeAll(async () => {
  world = await createTestWorld("verify");
});

afterAll(async () => {
  await world?.cleanup();
});

describe("verifyDatabaseInvariants", () => {
  it("holds on a freshly loaded campaign", async () => {
    expect(await status()).toEqual({ I1: true, I2: true, I4: true, I6: true, budget: true, refunds: true });
  });

  it("reports I1 when a grant was stored without taking stock", async () => {
    await insert("v1", "pv1", "status, campaign_id, activity_id, tier_id, discount_fen, payable_fen|'granted', 'qianan-2020-b2', 'A2', 'A2-400', 40000, 210000").execute(world.db.kysely);
    expect((await status()).I1).toBe(false);
    await sql`update tiers set pool = pool - 1 where id = 'A2-400'`.execute(world.db.kysely);
    expect((await status()).I1).toBe(true);
  });

  it("reports I2 when a payer holds two vouchers in one activity", async () => {
    await sql`drop index attempts_one_grant_per_payer`.execute(world.db.kysely);
    await insert("v2", "pv1", "status, campaign_id, activity_id, tier_id, discount_fen, payable_fen|'granted', 'qianan-2020-b2', 'A2', 'A2-400', 40000, 210000").execute(world.db.kysely);
    await sql`update tiers set pool = pool - 1 where id = 'A2-400'`.execute(world.db.kysely);
    expect(await status()).toMatchObject({ I1: true, I2: false });
    await sql`delete from attempts where txn_id = 'v2'`.execute(world.db.kysely);
    await sql`update tiers set pool = pool + 1 where id = 'A2-400'`.execute(world.db.kysely);
    expect((await status()).I2).toBe(true);
  });

  it("reports the budget when a grant's discount is not its tier's, or the discounts pass the budget", async () => {
    await insert("v4", "pv4", "status, campaign_id, activity_id, tier_id, discount_fen, payable_fen|'granted', 'qianan-2020-b2', 'A2', 'A2-400', 40001, 209999").execute(world.db.kysely);
    await sql`update tiers set pool = pool - 1 where id = 'A2-400'`.execute(world.db.kysely);
    expect(await status()).toMatchObject({ I1: true, budget: false });
    await sql`update attempts set discount_fen = 40000, payable_fen = 210000 where txn_id = 'v4'`.execute(world.db.kysely);
    expect((await status()).budget).toBe(true);
    await sql`update campaigns set budget_fen = 50000, budget_left_fen = 50000 where id = 'qianan-2020-b2'`.execute(world.db.kysely);
    expect((await status()).budget).toBe(false);
    await sql`update campaigns set budget_fen = 200000000, budget_left_fen = 200000000 where id = 'qianan-2020-b2'`.execute(world.db.kysely);
  });

  it("reports I6 when sold_out was answered while a qualifying tier still had stock", async () => {
    await insert("v3", "pv3", "status, reason, campaign_id, activity_id|'rejected', 'sold_out', 'qianan-2020-b2', 'A2'").execute(world.db.kysely);
    expect((await status()).I6).toBe(false);
  });

  it("reads I6 in time once refunds return stock, and checks every return against its refund", async () => {
    const db = world.db.kysely;
    await sql`delete from attempts where txn_id = 'v3'`.execute(db);
    // A2-20 (quota 250, spend >= 100 CNY) sold out at t0: 250 grants, no stock left anywhere.
    await sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, decided_at, partition,
                                    decided_by, status, campaign_id, activity_id, tier_id, discount_fen, payable_fen)
              select 'acq', 'g' || i, 'h', 'pg' || i, 'M-0001', 15000, '2020-09-13T10:00:00+08:00', '2020-09-13T10:00:00+08:00',
                     '2020-09-13T10:00:00+08:00', 0, 'worker', 'granted', 'qianan-2020-b2', 'A2', 'A2-20', 2000, 13000
                from generate_series(1, 250) i`.execute(db);
    await sql`update tiers set pool = 0, sold_out_at = '2020-09-13T10:00:00+08:00' where id = 'A2-20'`.execute(db);
    await sql`update tier_shares set remaining = 0 where tier_id = 'A2-20'`.execute(db);
    const refusal = (txnId: string, at: string) =>
      sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, decided_at, partition,
                                decided_by, status, reason, campaign_id, activity_id)
          values ('acq', ${txnId}, 'h', ${`p-${txnId}`}, 'M-0001', 15000, ${at}, ${at}, ${at}, 0, 'worker', 'rejected', 'sold_out', 'qianan-2020-b2', 'A2')`.execute(db);
    await refusal("late-1", "2020-09-13T10:00:01+08:00");
    expect(await status()).toMatchObject({ I1: true, I6: true, refunds: true });

    // A refund at t0 + 2 s returns one voucher: the refusal at t0 + 1 s was still true when made.
    await sql`update attempts set voucher_returned_at = '2020-09-13T10:00:02+08:00' where txn_id = 'g1'`.execute(db);
    expect(await status()).toMatchObject({ I1: false, refunds: false });
    await sql`update tiers set pool = 1, sold_out_at = null where id = 'A2-20'`.execute(db);
    await sql`insert into refunds (acquirer_id, refund_id, txn_id, body_hash, amount_fen, refunded_at, outcome, refunded_total_fen)
              values ('acq', 'r1', 'g1', 'h', 15000, '2020-09-13T10:00:02+08:00', 'voucher_returned', 15000)`.execute(db);
    expect(await status()).toMatchObject({ I1: true, I6: true, refunds: true });

    // A sold_out decided after the voucher came back is stranded stock.
    await refusal("late-2", "2020-09-13T10:00:03+08:00");
    expect((await status()).I6).toBe(false);
    // Granting the returned voucher before it makes the tier full again at t0 + 3 s: true again.
    await sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, decided_at, partition,
                                    decided_by, status, campaign_id, activity_id, tier_id, discount_fen, payable_fen)
              values ('acq', 'again', 'h', 'p-again', 'M-0001', 15000, '2020-09-13T10:00:02.5+08:00', '2020-09-13T10:00:02.5+08:00',
                      '2020-09-13T10:00:02.5+08:00', 0, 'worker', 'granted', 'qianan-2020-b2', 'A2', 'A2-20', 2000, 13000)`.execute(db);
    await sql`update tiers set pool = 0 where id = 'A2-20'`.execute(db);
    expect(await status()).toMatchObject({ I1: true, I6: true, refunds: true });

    // Two refunds claiming to return one voucher, adding up to more than was paid, are reported.
    await sql`drop index refunds_one_return_per_txn`.execute(db);
    await sql`insert into refunds (acquirer_id, refund_id, txn_id, body_hash, amount_fen, refunded_at, outcome, refunded_total_fen)
              values ('acq', 'r2', 'g1', 'h', 1, now(), 'voucher_returned', 15001)`.execute(db);
    const detail = (await verifyDatabaseInvariants(db, campaign)).find((c) => c.id === "refunds")!;
    expect(detail.ok).toBe(false);
    expect(detail.detail).toMatch(/^1 vouchers returned without exactly one returning refund; 1 payments refunded above their amount$/);
  });
});
