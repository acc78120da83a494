import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { checkAnswers, type ReceivedAnswer } from "@quanta/cli";
import { createTestWorld, type TestWorld } from "@quanta/test-kit";
import { checkAcknowledged, refundTx, verifyDatabaseInvariants } from "@quanta/db";

/**
 * The checks that the rush, the tests and `quanta verify` rely on must be
 * able to fail. Each case breaks the database behind the application's back
 * (dropping the constraint that would otherwise stop it) and expects the
 * broken invariant to be reported.
 * One file of 370-odd lines on purpose: every case breaks the same seeded world in its own way,
 * and read together they are the list of what each check can catch.
 */
let world: TestWorld;
const campaign = "qianan-2020-b2";
const status = async () =>
  Object.fromEntries((await verifyDatabaseInvariants(world.db.kysely, campaign)).map((c) => [c.id, c.ok]));
const check = async (id: string) =>
  (await verifyDatabaseInvariants(world.db.kysely, campaign)).find((c) => c.id === id)!;
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
    expect(await status()).toEqual({ I1: true, I2: true, I6: true, budget: true, refunds: true });
  });

  // The order and the words are what `quanta verify`, the rush report and the tests read.
  it("answers the checks in a fixed order, each with its detail line", async () => {
    expect(await verifyDatabaseInvariants(world.db.kysely, campaign)).toEqual([
      {
        id: "I1",
        ok: true,
        detail: "6 tiers: held <= quota and held + remaining = quota (0 vouchers returned by refunds)",
      },
      {
        id: "I2",
        ok: true,
        detail: "policy kept: 0 grants, none to a payer already granted in the activity, no slot released",
      },
      { id: "I6", ok: true, detail: "0 sold_out refusals, each on tiers empty everywhere when it was decided" },
      {
        id: "budget",
        ok: true,
        detail:
          "discounts held (granted net of refunds) 0.00 of a 2000000.00 CNY budget; 0 grants whose discount differs from their tier's",
      },
      {
        id: "refunds",
        ok: true,
        detail: "0 refunds: each returned voucher returned once, no payment refunded above its amount",
      },
    ]);
    expect(await verifyDatabaseInvariants(world.db.kysely, "no-such-campaign")).toEqual([
      { id: "I1", ok: false, detail: "no tiers found for campaign no-such-campaign" },
      { id: "I2", ok: false, detail: "campaign no-such-campaign not found" },
      { id: "I6", ok: true, detail: "0 sold_out refusals, each on tiers empty everywhere when it was decided" },
      { id: "budget", ok: false, detail: "campaign no-such-campaign not found" },
      {
        id: "refunds",
        ok: true,
        detail: "0 refunds: each returned voucher returned once, no payment refunded above its amount",
      },
    ]);
  });

  it("reports I1 when a grant was stored without taking stock", async () => {
    await insert(
      "v1",
      "pv1",
      "status, campaign_id, activity_id, tier_id, discount_fen, payable_fen|'granted', 'qianan-2020-b2', 'A2', 'A2-400', 40000, 210000",
    ).execute(world.db.kysely);
    expect((await status()).I1).toBe(false);
    expect((await check("I1")).detail).toBe("A2-400: held 1 (granted 1 - returned 0) + remaining 3000 vs quota 3000");
    await sql`update tiers set pool = pool - 1 where id = 'A2-400'`.execute(world.db.kysely);
    expect((await status()).I1).toBe(true);
  });

  it("reports I2 when a payer holds two vouchers in one activity", async () => {
    await sql`drop index attempts_one_grant_per_payer`.execute(world.db.kysely);
    await insert(
      "v2",
      "pv1",
      "status, campaign_id, activity_id, tier_id, discount_fen, payable_fen|'granted', 'qianan-2020-b2', 'A2', 'A2-400', 40000, 210000",
    ).execute(world.db.kysely);
    await sql`update tiers set pool = pool - 1 where id = 'A2-400'`.execute(world.db.kysely);
    expect(await status()).toMatchObject({ I1: true, I2: false });
    expect((await check("I2")).detail).toBe(
      "policy kept: 1 payers granted again although the policy keeps the slot, e.g. A2/pv1: v1 then v2",
    );
    await sql`delete from attempts where txn_id = 'v2'`.execute(world.db.kysely);
    await sql`update tiers set pool = pool + 1 where id = 'A2-400'`.execute(world.db.kysely);
    expect((await status()).I2).toBe(true);
  });

  it("reports the budget when a grant's discount is not its tier's, or the discounts pass the budget", async () => {
    await insert(
      "v4",
      "pv4",
      "status, campaign_id, activity_id, tier_id, discount_fen, payable_fen|'granted', 'qianan-2020-b2', 'A2', 'A2-400', 40001, 209999",
    ).execute(world.db.kysely);
    await sql`update tiers set pool = pool - 1 where id = 'A2-400'`.execute(world.db.kysely);
    expect(await status()).toMatchObject({ I1: true, budget: false });
    expect((await check("budget")).detail).toBe(
      "discounts held (granted net of refunds) 800.01 of a 2000000.00 CNY budget; 1 grants whose discount differs from their tier's",
    );
    await sql`update attempts set discount_fen = 40000, payable_fen = 210000 where txn_id = 'v4'`.execute(
      world.db.kysely,
    );
    expect((await status()).budget).toBe(true);
    await sql`update campaigns set budget_fen = 50000, budget_left_fen = 50000 where id = 'qianan-2020-b2'`.execute(
      world.db.kysely,
    );
    expect((await status()).budget).toBe(false);
    await sql`update campaigns set budget_fen = 200000000, budget_left_fen = 200000000 where id = 'qianan-2020-b2'`.execute(
      world.db.kysely,
    );
  });

  it("reports I6 when sold_out was answered while a qualifying tier still had stock", async () => {
    await insert(
      "v3",
      "pv3",
      "status, reason, campaign_id, activity_id|'rejected', 'sold_out', 'qianan-2020-b2', 'A2'",
    ).execute(world.db.kysely);
    expect((await status()).I6).toBe(false);
    expect((await check("I6")).detail).toBe("5 sold_out refusals while stock remained, e.g. v3 (A2-100)");
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
          values ('acq', ${txnId}, 'h', ${`p-${txnId}`}, 'M-0001', 15000, ${at}, ${at}, ${at}, 0, 'worker', 'rejected', 'sold_out', 'qianan-2020-b2', 'A2')`.execute(
        db,
      );
    await refusal("late-1", "2020-09-13T10:00:01+08:00");
    expect(await status()).toMatchObject({ I1: true, I6: true, refunds: true });

    // A refund at t0 + 2 s returns one voucher: the refusal at t0 + 1 s was still true when made.
    await sql`update attempts set voucher_returned_at = '2020-09-13T10:00:02+08:00' where txn_id = 'g1'`.execute(db);
    expect(await status()).toMatchObject({ I1: false, refunds: false });
    await sql`update tiers set pool = 1, sold_out_at = null where id = 'A2-20'`.execute(db);
    await sql`insert into refunds (acquirer_id, refund_id, txn_id, body_hash, amount_fen, refunded_at, outcome, refunded_total_fen)
              values ('acq', 'r1', 'g1', 'h', 15000, '2020-09-13T10:00:02+08:00', 'voucher_returned', 15000)`.execute(
      db,
    );
    expect(await status()).toMatchObject({ I1: true, I6: true, refunds: true });

    // A sold_out decided after the voucher came back is stranded stock.
    await refusal("late-2", "2020-09-13T10:00:03+08:00");
    expect((await status()).I6).toBe(false);
    // Granting the returned voucher before it makes the tier full again at t0 + 3 s: true again.
    await sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, decided_at, partition,
                                    decided_by, status, campaign_id, activity_id, tier_id, discount_fen, payable_fen)
              values ('acq', 'again', 'h', 'p-again', 'M-0001', 15000, '2020-09-13T10:00:02.5+08:00', '2020-09-13T10:00:02.5+08:00',
                      '2020-09-13T10:00:02.5+08:00', 0, 'worker', 'granted', 'qianan-2020-b2', 'A2', 'A2-20', 2000, 13000)`.execute(
      db,
    );
    await sql`update tiers set pool = 0 where id = 'A2-20'`.execute(db);
    expect(await status()).toMatchObject({ I1: true, I6: true, refunds: true });

    // Two refunds claiming to return one voucher, adding up to more than was paid, are reported.
    await sql`drop index refunds_one_return_per_txn`.execute(db);
    await sql`insert into refunds (acquirer_id, refund_id, txn_id, body_hash, amount_fen, refunded_at, outcome, refunded_total_fen)
              values ('acq', 'r2', 'g1', 'h', 1, now(), 'voucher_returned', 15001)`.execute(db);
    const detail = (await verifyDatabaseInvariants(db, campaign)).find((c) => c.id === "refunds")!;
    expect(detail.ok).toBe(false);
    expect(detail.detail).toMatch(
      /^1 vouchers returned without exactly one returning refund; 1 payments refunded above their amount$/,
    );
  });
});

/**
 * I2 by the campaign's refund slot policy. The partial unique index only sees grants whose slot
 * is not released, so each break below gets past it (or drops it) and past a recount of it.
 */
describe("I2 by the refund slot policy", () => {
  const grant = (txnId: string, payerId: string) =>
    insert(
      txnId,
      payerId,
      "status, campaign_id, activity_id, tier_id, discount_fen, payable_fen|'granted', 'qianan-2020-b2', 'A2', 'A2-400', 40000, 210000",
    ).execute(world.db.kysely);
  const takeStock = (n: number) =>
    sql`update tiers set pool = pool - ${n} where id = 'A2-400'`.execute(world.db.kysely);
  const refund = (refundId: string, txnId: string) =>
    refundTx(world.db.kysely, {
      acquirerId: "acq",
      refundId,
      txnId,
      amountFen: 250000,
      refundedAtMs: Date.now(),
      bodyHash: "h",
    });

  it("kept: a slot released behind the policy's back and the payer granted again", async () => {
    await grant("k1", "pk");
    await takeStock(1);
    expect(await refund("rk1", "k1")).toMatchObject({
      kind: "recorded",
      row: { outcome: "voucher_returned", slot_released: false },
    });
    expect((await check("I2")).ok).toBe(true);
    // The index ignores a released slot, so a second grant goes in without touching any constraint.
    await sql`update attempts set slot_released_at = voucher_returned_at where txn_id = 'k1'`.execute(world.db.kysely);
    await grant("k2", "pk");
    await takeStock(1);
    expect(await status()).toMatchObject({ I1: true, I2: false });
    expect((await check("I2")).detail).toBe(
      "policy kept: 1 payers granted again although the policy keeps the slot, e.g. A2/pk: k1 then k2; " +
        "1 payers had a slot released although the policy keeps it, e.g. A2/pk: k1 then k2",
    );
  });

  it("released: a payer granted again after the refund holds; before it, or while holding a voucher, does not", async () => {
    const db = world.db.kysely;
    await sql`delete from attempts where txn_id = 'k2'`.execute(db);
    await takeStock(-1);
    await sql`update campaigns set refund_slot = 'released' where id = ${campaign}`.execute(db);
    // Every voucher returned so far in this file was returned under `kept`; under `released` its slot
    // comes back with it. All but k1's are released here as the policy says.
    await sql`update attempts set slot_released_at = case when txn_id = 'k1' then null else voucher_returned_at end
               where voucher_returned_at is not null`.execute(db);
    expect((await check("I2")).detail).toBe(
      "policy released: 1 payers had a voucher returned without its slot released although the policy releases it, e.g. A2/pk: k1",
    );
    await sql`update attempts set slot_released_at = voucher_returned_at where txn_id = 'k1'`.execute(db);

    // The application's way: grant, refund (slot released), grant again.
    await grant("r1", "pr");
    await takeStock(1);
    expect(await refund("rr1", "r1")).toMatchObject({
      kind: "recorded",
      row: { outcome: "voucher_returned", slot_released: true },
    });
    await grant("r2", "pr");
    await takeStock(1);
    expect(await status()).toMatchObject({ I1: true, I2: true });
    // 3 slots: g1's and k1's from earlier, r1's here.
    expect((await check("I2")).detail).toBe(
      "policy released: 256 grants, 3 slots released by refunds, 1 grants to a payer again, each after the previous voucher was returned and its slot released",
    );

    // The slot released only after the second grant was decided: the payer held two vouchers meanwhile.
    await sql`update attempts set slot_released_at = (select decided_at from attempts where txn_id = 'r2') + interval '1 second' where txn_id = 'r1'`.execute(
      db,
    );
    expect(await status()).toMatchObject({ I1: true, I2: false });
    expect((await check("I2")).detail).toBe(
      "policy released: 1 payers granted again before the previous voucher was returned and its slot released, e.g. A2/pr: r1 then r2",
    );
    await sql`update attempts set slot_released_at = voucher_returned_at where txn_id = 'r1'`.execute(db);
    expect((await check("I2")).ok).toBe(true);

    // Two live vouchers of one activity: only possible with the index gone (dropped in the first I2 case).
    await grant("r3", "pr");
    await takeStock(1);
    expect(await status()).toMatchObject({ I1: true, I2: false });
    expect((await check("I2")).detail).toBe(
      "policy released: 1 payers granted again before the previous voucher was returned and its slot released, e.g. A2/pr: r2 then r3",
    );
  });
});

/** I3 and I4 compare what acquirers were answered with the stored decisions. */
describe("checkAcknowledged (I3) and checkAnswers (I4)", () => {
  const granted = (txnId: string): ReceivedAnswer => ({
    acquirerId: "acq",
    txnId,
    status: 200,
    // Key order as another serializer might write it: the value is compared, not the spelling.
    answer: { payableFen: 210000, discountFen: 40000, tierId: "A2-400", activityId: "A2", status: "granted", txnId },
  });

  it("fails on an empty list and names what is missing", async () => {
    const db = world.db.kysely;
    expect(await checkAcknowledged(db, [])).toEqual({
      id: "I3",
      ok: false,
      detail: "no acknowledged txns to check: an empty list proves nothing",
    });
    expect(
      await checkAcknowledged(db, [
        { acquirerId: "acq", txnId: "r2" },
        { acquirerId: "acq", txnId: "r2" },
      ]),
    ).toEqual({ id: "I3", ok: true, detail: "1 acknowledged txns, each with exactly one stored decision" });
    expect(
      await checkAcknowledged(db, [
        { acquirerId: "acq", txnId: "r2" },
        { acquirerId: "acq", txnId: "lost" },
      ]),
    ).toEqual({ id: "I3", ok: false, detail: "1 of 2 acknowledged txns have no decision, e.g. acq/lost" });
  });

  it("I4 holds when every 200 is the stored decision, and fails on a decision changed behind the application's back", async () => {
    const db = world.db.kysely;
    const answers = [
      granted("r2"),
      { acquirerId: "acq", txnId: "r2", status: 202, answer: { txnId: "r2", status: "pending" } },
      granted("r2"),
    ];
    expect(await checkAnswers(db, answers)).toEqual({
      id: "I4",
      ok: true,
      detail: "2 answers 200 for 1 txns, each equal to the stored decision (1 answered 202: nothing to compare)",
    });
    expect(
      await checkAnswers(
        db,
        answers.filter((a) => a.status === 202),
      ),
    ).toMatchObject({ ok: false, detail: "no 200 answers to compare with the stored decisions (1 answered 202)" });
    expect((await checkAnswers(db, [granted("lost")])).detail).toMatch(
      /^1 of 1 answers 200 \(1 txns\) differ from the stored decision, e\.g\. acq\/lost: answered \{.*\}, nothing stored$/,
    );

    // The stored grant's discount changed behind the application's back (its shape constraint still holds).
    await sql`update attempts set discount_fen = 39999, payable_fen = 210001 where txn_id = 'r2'`.execute(db);
    expect(await checkAnswers(db, answers)).toEqual({
      id: "I4",
      ok: false,
      detail:
        "2 of 2 answers 200 (1 txns) differ from the stored decision, e.g. acq/r2: " +
        'answered {"activityId":"A2","discountFen":40000,"payableFen":210000,"status":"granted","tierId":"A2-400","txnId":"r2"}, ' +
        'stored {"activityId":"A2","discountFen":39999,"payableFen":210001,"status":"granted","tierId":"A2-400","txnId":"r2"}',
    });
    await sql`update attempts set discount_fen = 40000, payable_fen = 210000 where txn_id = 'r2'`.execute(db);
    expect((await checkAnswers(db, answers)).ok).toBe(true);
  });

  it("I3 and I4 fail on a txn stored twice, once its primary key is gone", async () => {
    const db = world.db.kysely;
    // The refunds' foreign key hangs on the primary key: it goes with it.
    await sql`alter table attempts drop constraint attempts_pk cascade`.execute(db);
    await insert(
      "r2",
      "pr2",
      "status, reason, campaign_id, activity_id|'rejected', 'already_redeemed', 'qianan-2020-b2', 'A2'",
    ).execute(db);
    expect(await checkAcknowledged(db, [{ acquirerId: "acq", txnId: "r2" }])).toEqual({
      id: "I3",
      ok: false,
      detail: "1 of 1 acknowledged txns were decided more than once, e.g. acq/r2 (2 decisions)",
    });
    const i4 = await checkAnswers(db, [granted("r2")]);
    expect(i4.ok).toBe(false);
    expect(i4.detail).toMatch(
      /^1 of 1 answers 200 \(1 txns\) differ from the stored decision, e\.g\. acq\/r2: answered \{.*\}, 2 stored decisions \(/,
    );
    expect(i4.detail).toContain(
      '{"activityId":"A2","discountFen":40000,"payableFen":210000,"status":"granted","tierId":"A2-400","txnId":"r2"}',
    );
    expect(i4.detail).toContain('{"reason":"already_redeemed","status":"rejected","txnId":"r2"}');
  });
});
