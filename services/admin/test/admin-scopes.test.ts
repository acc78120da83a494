import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { sql } from "kysely";
import { parseEnv } from "@quanta/config";
import { SEED_CAMPAIGN_PATH } from "@quanta/cli";
import { createTestWorld, type TestWorld } from "@quanta/test-kit";
import { startAdmin, type RunningAdmin } from "@quanta/admin";

/**
 * Issue #19 item 4: admin tokens carry a scope (read < operate < administer). A valid token
 * without the route's scope gets 403 insufficient_scope naming the scope, and changes nothing; a
 * token of the old format (name=token) may only read. The admin refuses to start on a database
 * set up with another partition count, as the ingress and the worker do.
 */
const READ = "r".repeat(40);
const OPERATE = "o".repeat(40);
const ADMINISTER = "a".repeat(40);
const LEGACY = "l".repeat(40);
let world: TestWorld;
let admin: RunningAdmin;
let base = "";

beforeAll(async () => {
  world = await createTestWorld("admin_scopes", {
    env: {
      QUANTA_ADMIN_TOKENS: `carol:read=${READ},olga:operate=${OPERATE},ada:administer=${ADMINISTER},legacy=${LEGACY}`,
      QUANTA_ADMIN_PORT: "0",
    },
  });
  admin = await startAdmin(parseEnv(world.env));
  base = `http://127.0.0.1:${admin.port}`;
});

afterAll(async () => {
  await admin?.close();
  await world?.cleanup();
});

/** The admin API's JSON answers, as far as these tests read them (a text answer is only compared whole). */
interface AdminAnswer {
  error: { code: string; message: string; scope?: string };
  records: unknown;
}

const call = async (token: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return {
    status: res.status,
    challenge: res.headers.get("www-authenticate"),
    body: (res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text()) as AdminAnswer,
  };
};
const seed = JSON.parse(readFileSync(SEED_CAMPAIGN_PATH, "utf8"));
// The same merchants as the seed in May: no overlap, so only the scope decides.
const may = (id: string) => ({
  ...seed,
  id,
  window: { start: "2020-05-01T00:00:00+08:00", end: "2020-05-31T23:59:59+08:00" },
});
const pause = "/admin/v1/campaigns/qianan-2020-b2/activities/A2/pause";
const resume = "/admin/v1/campaigns/qianan-2020-b2/activities/A2/resume";
const merchants = "/admin/v1/campaigns/qianan-2020-b2/activities/A1/merchants";
const paused = async () =>
  (
    await sql<{
      paused: boolean;
    }>`select paused_at is not null as paused from activities where campaign_id = 'qianan-2020-b2' and id = 'A2'`.execute(
      world.db.kysely,
    )
  ).rows[0]!.paused;
const loaded = async () =>
  (await sql<{ id: string }>`select id from campaigns order by id`.execute(world.db.kysely)).rows.map((r) => r.id);
const flagship = async () =>
  (
    await sql<{
      merchant_id: string;
    }>`select merchant_id from activity_merchants where campaign_id = 'qianan-2020-b2' and activity_id = 'A1'`.execute(
      world.db.kysely,
    )
  ).rows.map((r) => r.merchant_id);
const refused = (needed: string) => ({
  status: 403,
  challenge: `Bearer error="insufficient_scope", scope="${needed}"`,
  body: { error: { code: "insufficient_scope", scope: needed } },
});

describe("admin token scopes", () => {
  it("read: status, settlement and the audit log, and nothing that changes anything", async () => {
    for (const token of [READ, LEGACY]) {
      expect((await call(token, "GET", "/admin/v1/campaigns/qianan-2020-b2")).status).toBe(200);
      expect((await call(token, "GET", "/admin/v1/campaigns/qianan-2020-b2/settlement")).status).toBe(200);
      expect((await call(token, "GET", "/admin/v1/audit")).status).toBe(200);
      expect(await call(token, "POST", pause)).toMatchObject(refused("operate"));
      expect(await call(token, "POST", "/admin/v1/campaigns", may("by-reader"))).toMatchObject(refused("administer"));
      expect(await call(token, "PUT", merchants, { merchants: ["M-OTHER"] })).toMatchObject(refused("administer"));
    }
    expect((await call(READ, "POST", pause)).body.error.message).toBe("carol holds read; this needs operate");
    expect(await paused()).toBe(false);
    expect(await loaded()).toEqual(["qianan-2020-b2"]);
    expect(await flagship()).toEqual(["M-FLAGSHIP"]);
  });

  it("operate: also pause and resume, but no campaign load and no merchant list", async () => {
    expect(await call(OPERATE, "POST", pause)).toMatchObject({ status: 200, body: { paused: true, changed: true } });
    expect(await paused()).toBe(true);
    expect(await call(OPERATE, "POST", resume)).toMatchObject({ status: 200, body: { paused: false, changed: true } });
    expect((await call(OPERATE, "GET", "/admin/v1/campaigns/qianan-2020-b2")).status).toBe(200);
    expect(await call(OPERATE, "POST", "/admin/v1/campaigns", may("by-operator"))).toMatchObject(refused("administer"));
    expect(await call(OPERATE, "PUT", merchants, { merchants: ["M-OTHER"] })).toMatchObject(refused("administer"));
    expect(await loaded()).toEqual(["qianan-2020-b2"]);
    expect(await flagship()).toEqual(["M-FLAGSHIP"]);
  });

  it("administer: everything", async () => {
    expect(await call(ADMINISTER, "POST", "/admin/v1/campaigns", may("by-admin"))).toMatchObject({
      status: 201,
      body: { loaded: "by-admin" },
    });
    expect(await call(ADMINISTER, "PUT", merchants, { merchants: ["M-FLAGSHIP", "M-OTHER"] })).toMatchObject({
      status: 200,
      body: { added: 1 },
    });
    expect(await call(ADMINISTER, "POST", pause)).toMatchObject({ status: 200, body: { paused: true } });
    expect(await call(ADMINISTER, "POST", resume)).toMatchObject({ status: 200, body: { paused: false } });
    expect((await call(ADMINISTER, "GET", "/admin/v1/audit")).status).toBe(200);
  });

  it("audits what was done, by whom, and none of the refused requests", async () => {
    const audit = (await call(READ, "GET", "/admin/v1/audit?limit=100")).body.records as {
      actor: string;
      action: string;
      target: string;
    }[];
    expect(
      audit
        .filter((r) => !r.actor.startsWith("cli:"))
        .map((r) => `${r.actor} ${r.action} ${r.target}`)
        .reverse(),
    ).toEqual([
      "olga activity.pause qianan-2020-b2/A2",
      "olga activity.resume qianan-2020-b2/A2",
      "ada campaign.load by-admin",
      "ada activity.merchants qianan-2020-b2/A1",
      "ada activity.pause qianan-2020-b2/A2",
      "ada activity.resume qianan-2020-b2/A2",
    ]);
  });
});

describe("admin start", () => {
  it("refuses to start on a database set up with another partition count, naming both", async () => {
    expect(world.env.QUANTA_PARTITIONS).toBe("4");
    await expect(startAdmin(parseEnv({ ...world.env, QUANTA_PARTITIONS: "3" }))).rejects.toThrow(
      "QUANTA_PARTITIONS=3 but this database was set up with 4 partitions",
    );
    const count = await sql<{ value: string }>`select value from settings where key = 'partition_count'`.execute(
      world.db.kysely,
    );
    expect(count.rows[0]!.value).toBe("4");
  });
});
