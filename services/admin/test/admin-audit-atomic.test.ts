import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { sql } from "kysely";
import { parseEnv } from "@quanta/config";
import { parseCampaignFile } from "@quanta/domain";
import { SEED_CAMPAIGN_PATH, cliActor, loadCampaign } from "@quanta/cli";
import { createTestWorld, type TestWorld } from "@quanta/test-kit";
import { startAdmin, type RunningAdmin } from "@quanta/admin";

/**
 * Issue #19 item 4: a change and its audit record commit together or not at all. Each test makes
 * one side fail inside this file's own database (a CHECK the test adds to admin_audit or to
 * campaigns/activities) and looks for the other side; a load that succeeds is shown to be one
 * transaction by its rows' xmin.
 */
const TOKEN = "ops-token-0123456789abcdef0123456789";
let world: TestWorld;
let admin: RunningAdmin;
let base = "";

beforeAll(async () => {
  world = await createTestWorld("admin_audit_atomic", {
    env: { QUANTA_ADMIN_TOKENS: `ada:administer=${TOKEN}`, QUANTA_ADMIN_PORT: "0" },
  });
  admin = await startAdmin(parseEnv(world.env));
  base = `http://127.0.0.1:${admin.port}`;
});

afterAll(async () => {
  await admin?.close();
  await world?.cleanup();
});

const call = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
};
const seed = JSON.parse(readFileSync(SEED_CAMPAIGN_PATH, "utf8"));
/** The seed's shape with merchants of its own and a month of its own: nothing else refuses it. */
const file = (id: string, month: number, name = id) => ({
  ...seed,
  id,
  name,
  window: {
    start: `2021-${String(month).padStart(2, "0")}-01T00:00:00+08:00`,
    end: `2021-${String(month).padStart(2, "0")}-28T23:59:59+08:00`,
  },
  activities: seed.activities.map((a: { id: string; merchants: string[] }) => ({
    ...a,
    merchants: a.merchants.map((m) => `${id}-${m}`),
  })),
});
const q = (text: string) => sql.raw(text).execute(world.db.kysely);
const rows = async (table: string, campaignId: string) =>
  Number(
    (
      await sql<{
        n: string;
      }>`select count(*) as n from ${sql.table(table)} where ${sql.ref(table === "campaigns" ? "id" : "campaign_id")} = ${campaignId}`.execute(
        world.db.kysely,
      )
    ).rows[0]!.n,
  );
const audited = async (target: string) =>
  (
    await sql<{
      actor: string;
      action: string;
    }>`select actor, action from admin_audit where target = ${target} order by id`.execute(world.db.kysely)
  ).rows;
const loadedRows = async (id: string) => ({
  campaigns: await rows("campaigns", id),
  activities: await rows("activities", id),
  tiers: await rows("tiers", id),
  shares: await rows("tier_shares", id),
});
const nothing = { campaigns: 0, activities: 0, tiers: 0, shares: 0 };

describe("a campaign load and its audit record", () => {
  it("commit in one transaction (API and CLI): the campaign's row and its record carry the same xmin", async () => {
    expect((await call("POST", "/admin/v1/campaigns", file("via-api", 1))).status).toBe(201);
    await loadCampaign(world.databaseUrl, parseCampaignFile(file("via-cli", 2)), 4);
    for (const [id, actor] of [
      ["via-api", "ada"],
      ["via-cli", cliActor()],
    ] as const) {
      expect(await audited(id)).toEqual([{ actor, action: "campaign.load" }]);
      const xmins = await sql<{ campaign: string; audit: string }>`
        select (select xmin::text from campaigns where id = ${id}) as campaign,
               (select xmin::text from admin_audit where target = ${id} and action = 'campaign.load') as audit`.execute(
        world.db.kysely,
      );
      expect(xmins.rows[0]!.campaign).toBe(xmins.rows[0]!.audit);
    }
  });

  it("leave no campaign when the audit record cannot be written (API and CLI)", async () => {
    await q(`alter table admin_audit add constraint test_no_audit check (target not like 'no-audit%')`);
    try {
      expect((await call("POST", "/admin/v1/campaigns", file("no-audit-api", 3))).status).toBe(500);
      await expect(loadCampaign(world.databaseUrl, parseCampaignFile(file("no-audit-cli", 4)), 4)).rejects.toThrow(
        /test_no_audit/,
      );
      expect(await loadedRows("no-audit-api")).toEqual(nothing);
      expect(await loadedRows("no-audit-cli")).toEqual(nothing);
    } finally {
      await q(`alter table admin_audit drop constraint test_no_audit`);
    }
  });

  it("leave no audit record when the campaign cannot be written (API and CLI)", async () => {
    await q(`alter table tiers add constraint test_no_tiers check (campaign_id not like 'no-tiers%')`);
    try {
      expect((await call("POST", "/admin/v1/campaigns", file("no-tiers-api", 5))).status).toBe(500);
      await expect(loadCampaign(world.databaseUrl, parseCampaignFile(file("no-tiers-cli", 6)), 4)).rejects.toThrow(
        /test_no_tiers/,
      );
      for (const id of ["no-tiers-api", "no-tiers-cli"]) {
        expect(await loadedRows(id)).toEqual(nothing);
        expect(await audited(id)).toEqual([]);
      }
    } finally {
      await q(`alter table tiers drop constraint test_no_tiers`);
    }
  });
});

describe("a pause and its audit record", () => {
  const pausedA1 = async () =>
    (
      await sql<{
        paused: boolean;
      }>`select paused_at is not null as paused from activities where campaign_id = 'qianan-2020-b2' and id = 'A1'`.execute(
        world.db.kysely,
      )
    ).rows[0]!.paused;

  it("leave the activity running when the record cannot be written", async () => {
    await q(`alter table admin_audit add constraint test_no_pause_audit check (action <> 'activity.pause')`);
    try {
      expect((await call("POST", "/admin/v1/campaigns/qianan-2020-b2/activities/A1/pause")).status).toBe(500);
      expect(await pausedA1()).toBe(false);
    } finally {
      await q(`alter table admin_audit drop constraint test_no_pause_audit`);
    }
  });

  it("leave no record when the activity cannot be changed", async () => {
    await q(`alter table activities add constraint test_no_pause check (paused_at is null)`);
    try {
      expect((await call("POST", "/admin/v1/campaigns/qianan-2020-b2/activities/A1/pause")).status).toBe(500);
      expect(await audited("qianan-2020-b2/A1")).toEqual([]);
    } finally {
      await q(`alter table activities drop constraint test_no_pause`);
    }
    expect((await call("POST", "/admin/v1/campaigns/qianan-2020-b2/activities/A1/pause")).status).toBe(200);
    expect([await pausedA1(), await audited("qianan-2020-b2/A1")]).toEqual([
      true,
      [{ actor: "ada", action: "activity.pause" }],
    ]);
  });
});
