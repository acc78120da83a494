import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { sql } from "kysely";
import { SEED_CAMPAIGN_PATH, cliActor } from "@quanta/cli";
import { type TestWorld, startAdminStack, type AdminStack } from "@quanta/test-kit";
import type { CallbackClient } from "@quanta/loadtest";
import type { RunningIngress } from "@quanta/ingress";
import { AdminTokens } from "@quanta/admin";

/**
 * The admin API (issue #7) on its own port and tokens: authentication, campaign status, pause
 * and resume (payments meanwhile refused activity_paused), a new merchant list taking effect,
 * loading a campaign, settlement, and an audit record for every change.
 */
const TOKEN = "ops-token-0123456789abcdef0123456789";
let world: TestWorld;
let ingress: RunningIngress;
let client: CallbackClient;
let base = "";
let stack: AdminStack;

beforeAll(async () => {
  stack = await startAdminStack("admin", `alice:administer=${TOKEN}`, 8);
  ({ world, ingress, client, base } = stack);
});

afterAll(async () => {
  await stack?.close();
});

const call = async (method: string, path: string, body?: unknown, token = TOKEN) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text };
};
const pay = (txnId: string, merchantId: string, amountFen = 250_000) =>
  client.postPayment(
    JSON.stringify({ txnId, payerId: `payer-${txnId}`, merchantId, amountFen, paidAt: "2020-09-13T10:00:00+08:00" }),
  );
const waitFor = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 50; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("condition not reached within 5 s");
};

describe("admin API", () => {
  it("refuses a missing, wrong or acquirer token, and refuses to start with a weak or shared one", async () => {
    expect((await call("GET", "/admin/v1/campaigns/qianan-2020-b2", undefined, "")).status).toBe(401);
    expect((await call("GET", "/admin/v1/campaigns/qianan-2020-b2", undefined, `${TOKEN}x`)).status).toBe(401);
    expect((await call("GET", "/admin/v1/campaigns/qianan-2020-b2", undefined, world.secret)).status).toBe(401);
    expect(() => new AdminTokens("bob=short")).toThrow(/shorter than 32/);
    expect(() => new AdminTokens(`bob=${"s".repeat(40)}`, new Map([["acq", "s".repeat(40)]]))).toThrow(
      /acquirer secret/,
    );
    expect(() => new AdminTokens("")).toThrow(/required/);
  });

  it("reports a campaign's stock, sell-out times and budget", async () => {
    const s = await call("GET", "/admin/v1/campaigns/qianan-2020-b2");
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({
      campaignId: "qianan-2020-b2",
      budgetFen: 200_000_000,
      budgetCapped: false,
      grantedFen: 0,
    });
    expect(s.body.tiers.map((t: { tierId: string; remaining: number }) => [t.tierId, t.remaining])).toContainEqual([
      "A2-400",
      3_000,
    ]);
    expect((await call("GET", "/admin/v1/campaigns/nope")).status).toBe(404);
  });

  it("pauses an activity (payments refused activity_paused) and resumes it", async () => {
    expect((await pay("before-pause", "M-0001")).body).toMatchObject({ status: "granted" });
    expect((await call("POST", "/admin/v1/campaigns/qianan-2020-b2/activities/A2/pause")).body).toMatchObject({
      paused: true,
      changed: true,
    });
    await ingress.campaigns.refresh();
    const refused = await pay("during-pause", "M-0002");
    expect(refused).toMatchObject({
      status: 200,
      body: { txnId: "during-pause", status: "rejected", reason: "activity_paused" },
    });
    expect((await pay("flagship-open", "M-FLAGSHIP")).body).toMatchObject({ status: "granted", activityId: "A1" }); // another activity
    expect((await call("POST", "/admin/v1/campaigns/qianan-2020-b2/activities/A2/resume")).body).toMatchObject({
      paused: false,
      changed: true,
    });
    await waitFor(async () => ingress.campaigns.current()[0]!.activities.every((a) => !a.paused));
    expect((await pay("after-resume", "M-0003")).body).toMatchObject({ status: "granted" });
    expect((await call("POST", "/admin/v1/campaigns/qianan-2020-b2/activities/ZZ/pause")).status).toBe(404);
  });

  it("replaces an activity's merchant list; a new merchant is eligible within a second", async () => {
    expect((await pay("new-shop-1", "M-NEW-1")).body).toMatchObject({ reason: "merchant_not_eligible" });
    const seed = JSON.parse(readFileSync(SEED_CAMPAIGN_PATH, "utf8")) as {
      activities: { id: string; merchants: string[] }[];
    };
    const merchants = [
      ...seed.activities.find((a) => a.id === "A2")!.merchants.filter((m) => m !== "M-0500"),
      "M-NEW-1",
    ];
    expect(
      (await call("PUT", "/admin/v1/campaigns/qianan-2020-b2/activities/A2/merchants", { merchants })).body,
    ).toMatchObject({ added: 1, removed: 1 });
    await waitFor(async () => ingress.campaigns.current()[0]!.activities.some((a) => a.merchants.has("M-NEW-1")));
    expect((await pay("new-shop-2", "M-NEW-1")).body).toMatchObject({ status: "granted" });
    expect((await pay("removed-shop", "M-0500")).body).toMatchObject({ reason: "merchant_not_eligible" });
    expect(
      (await call("PUT", "/admin/v1/campaigns/qianan-2020-b2/activities/A2/merchants", { merchants: ["bad id"] }))
        .status,
    ).toBe(400);
  });

  it("loads a campaign (refusing a bad file and a duplicate), serves settlement, and audits every change", async () => {
    const seed = JSON.parse(readFileSync(SEED_CAMPAIGN_PATH, "utf8"));
    const batch1 = {
      ...seed,
      id: "qianan-2020-b1",
      name: "first batch",
      window: { start: "2020-05-01T00:00:00+08:00", end: "2020-05-31T23:59:59+08:00" },
    };
    expect((await call("POST", "/admin/v1/campaigns", batch1)).status).toBe(201);
    expect((await call("POST", "/admin/v1/campaigns", batch1)).status).toBe(409);
    expect((await call("POST", "/admin/v1/campaigns", { ...batch1, id: "x", budgetFen: -1 })).body).toMatchObject({
      error: { code: "invalid_body" },
    });
    // Two campaigns listing the same merchants: the payment's date picks the campaign, limits are per activity.
    await waitFor(async () => ingress.campaigns.current().length === 2);
    // The payer who got an A2 voucher in the second batch can get one in the first: limits are per campaign's activity.
    const may = await client.postPayment(
      JSON.stringify({
        txnId: "may-payment",
        payerId: "payer-before-pause",
        merchantId: "M-0004",
        amountFen: 250_000,
        paidAt: "2020-05-20T10:00:00+08:00",
      }),
    );
    expect(may.body).toMatchObject({ status: "granted", activityId: "A2" });
    const stored = await sql<{
      campaign_id: string;
    }>`select campaign_id from attempts where txn_id = 'may-payment'`.execute(world.db.kysely);
    expect(stored.rows[0]!.campaign_id).toBe("qianan-2020-b1");
    const settled = await call("GET", "/admin/v1/campaigns/qianan-2020-b2/settlement");
    expect(settled.body).toMatchObject({ campaignId: "qianan-2020-b2", refundedFen: 0 });
    expect(settled.body.grantedFen).toBe(settled.body.netSpentFen);
    expect(String((await call("GET", "/admin/v1/campaigns/qianan-2020-b2/settlement?format=csv")).body)).toMatch(
      /^day,merchant_id,vouchers/,
    );

    const audit = (await call("GET", "/admin/v1/audit?limit=20")).body.records as {
      actor: string;
      action: string;
      target: string;
    }[];
    // Refused requests (unknown activity, bad merchant ids, duplicate or invalid campaign) change nothing and leave no record.
    // The seed was loaded by the CLI (createTestWorld), which audits its loads as well.
    expect(audit.map((r) => `${r.actor} ${r.action} ${r.target}`).reverse()).toEqual([
      `${cliActor()} campaign.load qianan-2020-b2`,
      "alice activity.pause qianan-2020-b2/A2",
      "alice activity.resume qianan-2020-b2/A2",
      "alice activity.merchants qianan-2020-b2/A2",
      "alice campaign.load qianan-2020-b1",
    ]);
    const rows = await sql<{ n: string }>`select count(*) as n from admin_audit`.execute(world.db.kysely);
    expect(Number(rows.rows[0]!.n)).toBe(audit.length);
  });
});
