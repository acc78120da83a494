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
    expect(await status()).toEqual({ I1: true, I2: true, I4: true, I6: true, budget: true });
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
});
