import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { parsePayerKey, payerRef } from "@quanta/contract";
import type { CallbackClient } from "@quanta/loadtest";
import { startInProcessStack, type InProcessStack, type TestWorld } from "@quanta/test-kit";

/**
 * Concurrency at the edges a rush produces: one txnId many times at once,
 * one payer paying many times at once, and the Postgres constraints that
 * stop an oversell or a second grant whatever the application does.
 */
let stack: InProcessStack;
let world: TestWorld;
let client: CallbackClient;

beforeAll(async () => {
  stack = await startInProcessStack("concurrency");
  ({ world, client } = stack);
});

afterAll(async () => {
  await stack?.close();
});

const payment = (txnId: string, payerId: string, merchantId: string, amountFen: number) =>
  JSON.stringify({ txnId, payerId, merchantId, amountFen, paidAt: "2020-09-13T00:00:03+08:00" });

describe("the same txnId sent 50 times at once", () => {
  it("is decided once and every answer is the same", async () => {
    const b = payment("storm-1", "storm-payer", "M-0042", 250_000);
    const answers = await Promise.all(Array.from({ length: 50 }, () => client.postPayment(b)));
    const bodies = new Set(answers.map((a) => JSON.stringify(a.body)));
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(bodies.size).toBe(1);
    expect(answers[0]!.body).toMatchObject({ status: "granted", tierId: "A2-400" });
    const rows = await sql<{ n: string }>`select count(*) as n from attempts where txn_id = 'storm-1'`.execute(
      world.db.kysely,
    );
    expect(Number(rows.rows[0]!.n)).toBe(1);
    // Rows hold the payer's pseudonym (issue #19), never the id itself.
    const stormPayer = payerRef(parsePayerKey(world.env.QUANTA_PAYER_KEY), "storm-payer");
    const grants = await sql<{
      n: string;
    }>`select count(*) as n from attempts where payer_id = ${stormPayer} and status = 'granted'`.execute(
      world.db.kysely,
    );
    expect(Number(grants.rows[0]!.n)).toBe(1);
    expect(await client.getAttempt("storm-1")).toMatchObject({ status: 200, body: answers[0]!.body });
  });
});

describe("one txnId with two bodies, 40 sends at once", () => {
  it("keeps the first body seen: its sends all get one answer, the other body's all get 409", async () => {
    const a = payment("race-1", "race-payer", "M-0043", 250_000);
    const b = payment("race-1", "race-payer", "M-0043", 150_000);
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        client.postPayment(i % 2 === 0 ? a : b).then((r) => ({ body: i % 2 === 0 ? a : b, r })),
      ),
    );
    const stored = await sql<{ amount_fen: number }>`select amount_fen from attempts where txn_id = 'race-1'`.execute(
      world.db.kysely,
    );
    expect(stored.rows).toHaveLength(1);
    const winner = stored.rows[0]!.amount_fen === 250_000 ? a : b;
    const won = answers.filter((x) => x.body === winner).map((x) => x.r);
    const lost = answers.filter((x) => x.body !== winner).map((x) => x.r);
    expect(won.filter((r) => r.status !== 200)).toEqual([]);
    expect(new Set(won.map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(lost.filter((r) => r.status !== 409)).toEqual([]);
    expect(await client.getAttempt("race-1")).toMatchObject({ status: 200, body: won[0]!.body });
  });
});

describe("one payer with 20 concurrent payments", () => {
  it("gets exactly one voucher per activity", async () => {
    const sends = Array.from({ length: 20 }, (_, i) =>
      client.postPayment(
        payment(`one-payer-${i}`, "busy-payer", i % 4 === 0 ? "M-FLAGSHIP" : `M-00${10 + i}`, 20_000 + i * 20_000),
      ),
    );
    const answers = await Promise.all(sends);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const granted = answers
      .map((a) => a.body as { status: string; activityId?: string; reason?: string })
      .filter((b) => b.status === "granted");
    expect(granted.map((b) => b.activityId).sort()).toEqual(["A1", "A2"]);
    const refused = answers.map((a) => a.body as { reason?: string }).filter((b) => b.reason !== undefined);
    expect(refused).toHaveLength(18);
    expect(new Set(refused.map((b) => b.reason))).toEqual(new Set(["already_redeemed"]));
  });
});

describe("Postgres is the last line of defence", () => {
  it("refuses a second grant to a payer, stock below zero and a second decision for a txn", async () => {
    const db = world.db.kysely;
    const granted = await sql<Record<string, unknown>>`select * from attempts where txn_id = 'storm-1'`.execute(db);
    const row = granted.rows[0]!;
    const second = sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, partition,
                        status, campaign_id, activity_id, tier_id, discount_fen, payable_fen, decided_by)
                       values (${row.acquirer_id}, 'storm-2', 'h', ${row.payer_id}, 'M-0001', 250000, now(), now(), 0,
                        'granted', ${row.campaign_id}, ${row.activity_id}, 'A2-200', 20000, 230000, 'worker')`;
    await expect(second.execute(db)).rejects.toMatchObject({
      code: "23505",
      constraint: "attempts_one_grant_per_payer",
    });
    const again = sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, partition,
                       status, reason, decided_by)
                      values (${row.acquirer_id}, 'storm-1', 'h', 'x', 'M-0001', 1, now(), now(), 0, 'rejected', 'sold_out', 'worker')`;
    await expect(again.execute(db)).rejects.toMatchObject({ code: "23505", constraint: "attempts_pk" });
    await expect(
      sql`update tier_shares set remaining = remaining - 100000 where tier_id = 'A2-20'`.execute(db),
    ).rejects.toMatchObject({ code: "23514" });
    await expect(sql`update tiers set pool = -1 where id = 'A2-20'`.execute(db)).rejects.toMatchObject({
      code: "23514",
    });
  });
});
