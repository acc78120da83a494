import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { isBudgetCapped } from "@quanta/domain";
import { verifyDatabaseInvariants } from "@quanta/db";
import type { CallbackClient } from "@quanta/loadtest";
import { startInProcessStack, testCampaign, type InProcessStack, type TestWorld } from "@quanta/test-kit";

/**
 * 额满即止: a campaign whose budget (2.50 CNY) is far below its quotas' worth (11.00 CNY) stops
 * granting exactly at the budget, across four partitions and two workers deciding at once, and
 * then answers budget_exhausted (not sold_out: stock remains). Never a fen over.
 */
const capped = testCampaign(
  { id: "capped", name: "a budget smaller than the quotas", budgetFen: 250 },
  { id: "C", name: "capped", merchants: ["C-1"] },
  [
    { id: "C-high", thresholdFen: 1_000, discountFen: 100, quota: 10 },
    { id: "C-low", thresholdFen: 500, discountFen: 10, quota: 10 },
  ],
);

let stack: InProcessStack;
let world: TestWorld;
let client: CallbackClient;

beforeAll(async () => {
  stack = await startInProcessStack("budget_cap", { campaigns: [capped] });
  ({ world, client } = stack);
});

afterAll(async () => {
  await stack?.close();
});

describe("a budget-capped campaign", () => {
  it("grants exactly up to the budget under concurrency, then answers budget_exhausted", async () => {
    expect(isBudgetCapped(capped)).toBe(true);
    const bodies = Array.from({ length: 60 }, (_, i) =>
      JSON.stringify({
        txnId: `cap-${i}`,
        payerId: `cap-payer-${i}`,
        merchantId: "C-1",
        amountFen: 5_000,
        paidAt: "2020-09-13T09:00:00+08:00",
      }),
    );
    const answers = await Promise.all(bodies.map((b) => client.postPayment(b)));
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const outcomes = answers.map(
      (a) => a.body as { status: string; tierId?: string; reason?: string; discountFen?: number },
    );
    const granted = outcomes.filter((o) => o.status === "granted");
    expect(granted.reduce((fen, o) => fen + o.discountFen!, 0)).toBe(250);
    expect(granted.filter((o) => o.tierId === "C-high")).toHaveLength(2);
    expect(granted.filter((o) => o.tierId === "C-low")).toHaveLength(5);
    const refused = outcomes.filter((o) => o.status === "rejected");
    expect(refused).toHaveLength(53);
    expect(new Set(refused.map((o) => o.reason))).toEqual(new Set(["budget_exhausted"]));

    const db = world.db.kysely;
    // Two workers did decide: each owns partitions (settled before startInProcessStack returned; leases are renewed meanwhile), and attempts
    // were decided by a worker in partitions of each, against the one budget, in their own rounds.
    const owned = stack.workers.map((w) => w.ownership.owned());
    expect(owned.map((o) => o.length)).toEqual([2, 2]);
    const decidedIn = new Set(
      (
        await sql<{
          partition: number;
        }>`select distinct partition from attempts where campaign_id = 'capped' and decided_by = 'worker'`.execute(db)
      ).rows.map((r) => r.partition),
    );
    for (const mine of owned) expect(mine.some((p) => decidedIn.has(p))).toBe(true);
    const row = await sql<{
      budget_left_fen: number;
    }>`select budget_left_fen from campaigns where id = 'capped'`.execute(db);
    expect(Number(row.rows[0]!.budget_left_fen)).toBe(0);
    expect((await verifyDatabaseInvariants(db, "capped")).filter((c) => !c.ok)).toEqual([]);
    // The constraint is the last line of defence: the counter cannot go below zero.
    await expect(
      sql`update campaigns set budget_left_fen = budget_left_fen - 1 where id = 'capped'`.execute(db),
    ).rejects.toMatchObject({ code: "23514" });
    // A repeat gets the same answer; a later payer is refused too.
    expect(await client.postPayment(bodies[0]!)).toMatchObject({ status: 200, body: answers[0]!.body });
    const late = JSON.stringify({
      txnId: "cap-late",
      payerId: "cap-late",
      merchantId: "C-1",
      amountFen: 5_000,
      paidAt: "2020-09-13T09:00:01+08:00",
    });
    expect((await client.postPayment(late)).body).toMatchObject({ status: "rejected", reason: "budget_exhausted" });
  });
});
