import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACQUIRER_HEADER, SIGNATURE_HEADER, sign } from "@quanta/contract";
import { findAttempt } from "@quanta/db";
import { SEED_CAMPAIGN_PATH, readCampaignFile } from "@quanta/cli";
import { startInProcessStack, testCampaign, type InProcessStack, type TestWorld } from "@quanta/test-kit";
import type { CallbackClient } from "@quanta/loadtest";
import type { RunningIngress } from "@quanta/ingress";

/**
 * Every answer row of the callback contract, against a real ingress and
 * worker on the machine's Postgres and Redis (one database and prefix for
 * this file).
 */
const tiny = testCampaign(
  { id: "tiny", name: "two vouchers", budgetFen: 1_000_000 },
  { id: "T", name: "tiny", merchants: ["T-1"] },
  [
    { id: "T-low", thresholdFen: 100, discountFen: 10, quota: 1 },
    { id: "T-high", thresholdFen: 1_000, discountFen: 100, quota: 1 },
  ],
);

let world: TestWorld;
let stack: InProcessStack;
let ingress: RunningIngress;
let client: CallbackClient;
let other: CallbackClient;
let seq = 0;

const body = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    txnId: `t${++seq}`,
    payerId: `p${seq}`,
    merchantId: "M-0001",
    amountFen: 250_000,
    paidAt: "2020-09-13T10:00:01+08:00",
    ...over,
  });

beforeAll(async () => {
  stack = await startInProcessStack("contract", {
    campaigns: [readCampaignFile(SEED_CAMPAIGN_PATH), tiny],
    workers: 1,
    connections: 16,
  });
  ({ world, ingress, client } = stack);
  other = stack.otherClient(4);
});

afterAll(async () => {
  await stack?.close();
});

describe("POST /v1/callbacks/payment", () => {
  it("200 granted: highest tier, payable = amount - discount", async () => {
    const a = await client.postPayment(body({ amountFen: 250_000 }));
    expect(a.status).toBe(200);
    expect(a.body).toEqual({
      txnId: `t${seq}`,
      status: "granted",
      activityId: "A2",
      tierId: "A2-400",
      discountFen: 40_000,
      payableFen: 210_000,
    });
    const flagship = await client.postPayment(body({ merchantId: "M-FLAGSHIP", amountFen: 20_000 }));
    expect(flagship.body).toMatchObject({
      status: "granted",
      activityId: "A1",
      tierId: "A1-100",
      discountFen: 10_000,
      payableFen: 10_000,
    });
  });

  it("200 rejected for each reason that needs no stock", async () => {
    expect((await client.postPayment(body({ amountFen: 9_999 }))).body).toEqual({
      txnId: `t${seq}`,
      status: "rejected",
      reason: "below_threshold",
    });
    expect((await client.postPayment(body({ merchantId: "M-9999" }))).body).toMatchObject({
      status: "rejected",
      reason: "merchant_not_eligible",
    });
    expect((await client.postPayment(body({ paidAt: "2020-10-01T00:00:00+08:00" }))).body).toMatchObject({
      status: "rejected",
      reason: "outside_window",
    });
  });

  it("200 rejected already_redeemed: one voucher per payer per activity, another activity still open", async () => {
    expect((await client.postPayment(body({ payerId: "same", amountFen: 60_000 }))).body).toMatchObject({
      status: "granted",
      tierId: "A2-100",
    });
    expect((await client.postPayment(body({ payerId: "same", amountFen: 250_000 }))).body).toMatchObject({
      status: "rejected",
      reason: "already_redeemed",
    });
    expect((await client.postPayment(body({ payerId: "same", merchantId: "M-FLAGSHIP" }))).body).toMatchObject({
      status: "granted",
      activityId: "A1",
    });
  });

  it("200 rejected sold_out only once every qualifying tier is empty everywhere (best_available falls to a lower tier)", async () => {
    const t = (over: Record<string, unknown>) => client.postPayment(body({ merchantId: "T-1", ...over }));
    expect((await t({ amountFen: 2_000 })).body).toMatchObject({
      status: "granted",
      tierId: "T-high",
      discountFen: 100,
      payableFen: 1_900,
    });
    expect((await t({ amountFen: 2_000 })).body).toMatchObject({
      status: "granted",
      tierId: "T-low",
      discountFen: 10,
      payableFen: 1_990,
    });
    expect((await t({ amountFen: 2_000 })).body).toMatchObject({ status: "rejected", reason: "sold_out" });
    expect((await t({ amountFen: 500 })).body).toMatchObject({ status: "rejected", reason: "sold_out" });
  });

  it("once a tier is known empty everywhere the ingress answers it without the queue, payer check first", async () => {
    // Runs after the test above emptied both T tiers (holders p(n-3) and p(n-2) of that test).
    await ingress.soldOut.refresh();
    expect(ingress.soldOut.allEmpty("tiny", ["T-high", "T-low"])).toBe(true);
    const holder = (await findAttempt(world.db.kysely, world.acquirerId, `t${seq - 3}`))!;
    expect(holder.status).toBe("granted");
    const t = (over: Record<string, unknown>) => client.postPayment(body({ merchantId: "T-1", ...over }));
    const fresh = await t({ amountFen: 5_000 });
    expect(fresh).toMatchObject({ status: 200, body: { status: "rejected", reason: "sold_out" } });
    const freshTxn = `t${seq}`;
    // The holder's own payer id (its row stores only the pseudonym of it).
    const redeemed = await t({ amountFen: 5_000, payerId: `p${seq - 3}` });
    expect(redeemed).toMatchObject({ status: 200, body: { status: "rejected", reason: "already_redeemed" } });
    for (const txn of [freshTxn, `t${seq}`])
      expect((await findAttempt(world.db.kysely, world.acquirerId, txn))?.decided_by).toBe("ingress");
    expect(await client.getAttempt(freshTxn)).toMatchObject({ status: 200, body: fresh.body });
    const again = JSON.stringify({
      txnId: freshTxn,
      payerId: `p${seq - 1}`,
      merchantId: "T-1",
      amountFen: 5_000,
      paidAt: "2020-09-13T10:00:01+08:00",
    });
    expect(await client.postPayment(again)).toMatchObject({ status: 200, body: fresh.body });
    expect(await client.postPayment(again.replace("5000", "5001"))).toMatchObject({ status: 409 });
  });

  it("the same txnId and body always gets the same answer; another body gets 409", async () => {
    const b = body({ amountFen: 120_000 });
    const first = await client.postPayment(b);
    const again = await client.postPayment(b);
    expect(first.status).toBe(200);
    expect(again).toMatchObject({ status: 200, body: first.body });
    const respelled = JSON.stringify({ ...JSON.parse(b), paidAt: "2020-09-13T02:00:01Z", ignored: true });
    expect((await client.postPayment(respelled)).body).toEqual(first.body);
    const conflict = await client.postPayment(JSON.stringify({ ...JSON.parse(b), amountFen: 120_001 }));
    expect(conflict).toMatchObject({ status: 409, body: { error: { code: "txn_conflict" } } });
    const stored = await findAttempt(world.db.kysely, world.acquirerId, JSON.parse(b).txnId);
    expect(stored?.amount_fen).toBe(120_000);
  });

  it("400 invalid_body names the field; nothing is stored", async () => {
    const missing = await client.postPayment(
      JSON.stringify({ txnId: "bad-1", payerId: "p", merchantId: "M-0001", paidAt: "2020-09-13T10:00:01+08:00" }),
    );
    expect(missing).toMatchObject({ status: 400, body: { error: { code: "invalid_body", field: "amountFen" } } });
    const typed = await client.postPayment(body({ txnId: "bad-2", amountFen: "250000" }));
    expect(typed).toMatchObject({ status: 400, body: { error: { code: "invalid_body", field: "amountFen" } } });
    const range = await client.postPayment(body({ txnId: "bad-3", amountFen: 0 }));
    expect(range).toMatchObject({ status: 400, body: { error: { field: "amountFen" } } });
    const json = await client.postPayment('{"txnId": "bad-4",');
    expect(json).toMatchObject({ status: 400, body: { error: { code: "invalid_body" } } });
    for (const txnId of ["bad-1", "bad-2", "bad-3", "bad-4"])
      expect(await findAttempt(world.db.kysely, world.acquirerId, txnId)).toBeUndefined();
  });

  it("401 unknown_acquirer, bad_signature, stale_timestamp; nothing is stored", async () => {
    const b = body({ txnId: "forged-1" });
    const t = Math.floor(Date.now() / 1000);
    const headers = (acquirer: string, signature: string) => ({
      "content-type": "application/json",
      [ACQUIRER_HEADER]: acquirer,
      [SIGNATURE_HEADER]: signature,
    });
    const path = "/v1/callbacks/payment";
    expect(await client.raw("POST", path, headers("nobody", sign(world.secret, t, b)), b)).toMatchObject({
      status: 401,
      body: { error: { code: "unknown_acquirer" } },
    });
    expect(
      await client.raw("POST", path, headers(world.acquirerId, sign("wrong-secret-0123456789", t, b)), b),
    ).toMatchObject({ status: 401, body: { error: { code: "bad_signature" } } });
    expect(await client.raw("POST", path, headers(world.acquirerId, "t=1,v1=zz"), b)).toMatchObject({
      status: 401,
      body: { error: { code: "bad_signature" } },
    });
    expect(await client.raw("POST", path, headers(world.acquirerId, sign(world.secret, t - 301, b)), b)).toMatchObject({
      status: 401,
      body: { error: { code: "stale_timestamp" } },
    });
    expect(await client.raw("POST", path, headers(world.acquirerId, sign(world.secret, t + 301, b)), b)).toMatchObject({
      status: 401,
      body: { error: { code: "stale_timestamp" } },
    });
    expect(await findAttempt(world.db.kysely, world.acquirerId, "forged-1")).toBeUndefined();
  });

  it("413 body_too_large and 415 unsupported_media_type", async () => {
    const big = JSON.stringify({ ...JSON.parse(body()), pad: "x".repeat(17 * 1024) });
    const t = Math.floor(Date.now() / 1000);
    const h = { [ACQUIRER_HEADER]: world.acquirerId, [SIGNATURE_HEADER]: sign(world.secret, t, big) };
    expect(
      await client.raw("POST", "/v1/callbacks/payment", { ...h, "content-type": "application/json" }, big),
    ).toMatchObject({ status: 413, body: { error: { code: "body_too_large" } } });
    const b = body();
    const h2 = { [ACQUIRER_HEADER]: world.acquirerId, [SIGNATURE_HEADER]: sign(world.secret, t, b) };
    expect(await client.raw("POST", "/v1/callbacks/payment", { ...h2, "content-type": "text/plain" }, b)).toMatchObject(
      { status: 415, body: { error: { code: "unsupported_media_type" } } },
    );
  });
});

describe("GET /v1/attempts/{txnId}", () => {
  it("200 with the decision, 404 unknown_txn, 401 on a bad signature, and only the acquirer's own txns", async () => {
    const b = body({ amountFen: 250_000 });
    const posted = await client.postPayment(b);
    const txnId = JSON.parse(b).txnId as string;
    expect(await client.getAttempt(txnId)).toMatchObject({ status: 200, body: posted.body });
    expect(await client.getAttempt("never-sent")).toMatchObject({
      status: 404,
      body: { error: { code: "unknown_txn" } },
    });
    expect(await other.getAttempt(txnId)).toMatchObject({ status: 404 });
    const t = Math.floor(Date.now() / 1000);
    const bad = await client.raw("GET", `/v1/attempts/${txnId}`, {
      [ACQUIRER_HEADER]: world.acquirerId,
      [SIGNATURE_HEADER]: sign(world.secret, t, `GET /v1/attempts/other`),
    });
    expect(bad).toMatchObject({ status: 401, body: { error: { code: "bad_signature" } } });
  });
});

describe("health and metrics", () => {
  it("serves /healthz, /readyz and /metrics", async () => {
    expect(await client.raw("GET", "/healthz", {})).toMatchObject({ status: 200 });
    expect(await client.raw("GET", "/readyz", {})).toMatchObject({ status: 200, body: { status: "ready" } });
    const metrics = await client.raw("GET", "/metrics", {});
    expect(String(metrics.body)).toMatch(/quanta_attempts_answered_total\{outcome="granted",reason=""\} \d+/);
    expect(String(metrics.body)).toMatch(/quanta_http_requests_total\{route="\/v1\/callbacks\/payment",status="401"\}/);
  });
});
