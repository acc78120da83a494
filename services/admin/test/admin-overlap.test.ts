import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { parseCampaignFile } from "@quanta/domain";
import { CampaignLoadRefusedError } from "@quanta/db";
import { loadCampaign } from "@quanta/cli";
import { type TestWorld, startAdminStack, type AdminStack } from "@quanta/test-kit";
import type { CallbackClient } from "@quanta/loadtest";
import type { RunningIngress } from "@quanta/ingress";

/**
 * Issue #19 item 4: a campaign whose window and merchants overlap a loaded one is refused at
 * load (admin API and CLI), naming the loaded campaign, the seconds and merchants they share,
 * unless its file says it wins there (`overrides`); then payments in the overlap go to it,
 * and the rest stay with the loaded one.
 */
const TOKEN = "ops-token-0123456789abcdef0123456789";
let world: TestWorld;
let ingress: RunningIngress;
let client: CallbackClient;
let base = "";
let stack: AdminStack;

beforeAll(async () => {
  stack = await startAdminStack("admin_overlap", `ada:administer=${TOKEN}`, 4);
  ({ world, ingress, client, base } = stack);
});

afterAll(async () => {
  await stack?.close();
});

const load = async (body: unknown) => {
  const res = await fetch(`${base}/admin/v1/campaigns`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};
/** The seed runs 2020-09-13 to 09-30 at M-FLAGSHIP and M-0001 … M-0500. */
const lateSeptember = (extra: Record<string, unknown> = {}) => ({
  id: "late-september",
  name: "a top-up for the last days, at a few of the seed's shops",
  budgetFen: 1_000_000,
  window: { start: "2020-09-25T00:00:00+08:00", end: "2020-10-10T23:59:59+08:00" },
  activities: [
    {
      id: "L",
      name: "top-up",
      merchants: ["M-NEW", "M-0500", "M-0499"],
      tiers: [{ id: "L-50", thresholdFen: 10_000, discountFen: 5_000, quota: 10 }],
    },
  ],
  ...extra,
});
const loaded = async () =>
  (await sql<{ id: string }>`select id from campaigns order by id`.execute(world.db.kysely)).rows.map((r) => r.id);
const audited = async () =>
  (
    await sql<{ target: string }>`select target from admin_audit where action = 'campaign.load' order by id`.execute(
      world.db.kysely,
    )
  ).rows.map((r) => r.target);
let seq = 0;
const pay = async (merchantId: string, paidAt: string) => {
  const txnId = `overlap-${++seq}`;
  const answer = await client.postPayment(
    JSON.stringify({ txnId, payerId: `payer-${txnId}`, merchantId, amountFen: 250_000, paidAt }),
  );
  return answer.body as { status: string; activityId?: string };
};

describe("overlapping campaigns", () => {
  it("refuses an undeclared overlap at load, naming the campaign, the window and the merchants, and loads nothing", async () => {
    const refused = await load(lateSeptember());
    expect(refused).toEqual({
      status: 409,
      body: {
        error: {
          code: "campaign_overlap",
          message:
            "campaign late-september overlaps loaded campaign qianan-2020-b2 from 2020-09-24T16:00:00.000Z to 2020-09-30T15:59:59.000Z " +
            'at 2 merchant(s): M-0499, M-0500; add "overrides": ["qianan-2020-b2"] to late-september\'s file if it is to win there',
          overlaps: [
            {
              campaignId: "qianan-2020-b2",
              window: { start: "2020-09-24T16:00:00.000Z", end: "2020-09-30T15:59:59.000Z" },
              merchantCount: 2,
              merchants: ["M-0499", "M-0500"],
            },
          ],
        },
      },
    });
    const cli = await loadCampaign(world.databaseUrl, parseCampaignFile(lateSeptember()), 4).catch(
      (error: unknown) => error,
    );
    expect(cli).toBeInstanceOf(CampaignLoadRefusedError);
    expect((cli as CampaignLoadRefusedError).refusal).toMatchObject({
      code: "campaign_overlap",
      overlaps: [{ campaignId: "qianan-2020-b2", merchantCount: 2 }],
    });
    expect((cli as Error).message).toMatch(
      /^campaign_overlap: campaign late-september overlaps loaded campaign qianan-2020-b2/,
    );
    expect(await loaded()).toEqual(["qianan-2020-b2"]);
    expect(await audited()).toEqual(["qianan-2020-b2"]);
  });

  it("refuses an override of a campaign that is not loaded", async () => {
    const refused = await load(lateSeptember({ overrides: ["qianan-2020-b2", "qianan-2020-b3"] }));
    expect(refused).toMatchObject({
      status: 409,
      body: { error: { code: "override_not_loaded", campaignIds: ["qianan-2020-b3"] } },
    });
    expect(await loaded()).toEqual(["qianan-2020-b2"]);
  });

  it("loads a declared overlap; payments in it go to the overriding campaign, the rest to the loaded one", async () => {
    expect(await load(lateSeptember({ overrides: ["qianan-2020-b2"] }))).toMatchObject({
      status: 201,
      body: { loaded: "late-september" },
    });
    await ingress.campaigns.refresh();
    // Activity L is late-september's, A2 the seed's (the stored rows below say which campaign).
    expect(await pay("M-0500", "2020-09-26T10:00:00+08:00")).toMatchObject({ status: "granted", activityId: "L" });
    expect(await pay("M-0500", "2020-09-20T10:00:00+08:00")).toMatchObject({ status: "granted", activityId: "A2" });
    expect(await pay("M-0001", "2020-09-26T10:00:00+08:00")).toMatchObject({ status: "granted", activityId: "A2" });
    expect(await pay("M-0499", "2020-10-05T10:00:00+08:00")).toMatchObject({ status: "granted", activityId: "L" });
    const stored = await sql<{
      campaign_id: string;
      n: string;
    }>`select campaign_id, count(*) as n from attempts group by campaign_id order by campaign_id`.execute(
      world.db.kysely,
    );
    expect(stored.rows.map((r) => [r.campaign_id, Number(r.n)])).toEqual([
      ["late-september", 2],
      ["qianan-2020-b2", 2],
    ]);
    expect(await audited()).toEqual(["qianan-2020-b2", "late-september"]);
  });

  it("checks a later campaign against every loaded one, the overriding one included", async () => {
    const third = {
      ...lateSeptember(),
      id: "third",
      overrides: ["qianan-2020-b2"],
      window: { start: "2020-10-01T00:00:00+08:00", end: "2020-10-02T23:59:59+08:00" },
    };
    expect(await load(third)).toMatchObject({
      status: 409,
      body: { error: { code: "campaign_overlap", overlaps: [{ campaignId: "late-september", merchantCount: 3 }] } },
    });
  });
});
