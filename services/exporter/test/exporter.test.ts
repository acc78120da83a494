import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { createTestWorld, type TestWorld } from "@quanta/cli";
import { createRedis, type QuantaRedis } from "@quanta/queue";
import { createExporter } from "@quanta/exporter";

let world: TestWorld;
let redis: QuantaRedis;

beforeAll(async () => {
  world = await createTestWorld("exporter");
  redis = createRedis(world.redisUrl, "exporter-test");
});

afterAll(async () => {
  redis?.disconnect();
  await world?.cleanup();
});

describe("exporter", () => {
  it("reports stock, quota and conservation per tier, and flags a broken conservation", async () => {
    const exporter = createExporter(world.db.kysely, redis, world.prefix);
    const text = await exporter.scrape();
    expect(text).toContain('quanta_tier_remaining{campaign="qianan-2020-b2",activity="A2",tier="A2-400"} 3000');
    expect(text).toContain('quanta_tier_quota{campaign="qianan-2020-b2",activity="A1",tier="A1-100"} 4000');
    expect(text).toContain('quanta_tier_conservation_error{campaign="qianan-2020-b2",activity="A2",tier="A2-20"} 0');
    expect(text).toContain('quanta_campaign_budget_fen{campaign="qianan-2020-b2"} 200000000');
    expect(text).toContain("quanta_exporter_collect_success 1");

    // Stock appearing from nowhere must show, not be hidden.
    await sql`update tiers set pool = pool + 1 where id = 'A2-20'`.execute(world.db.kysely);
    expect(await exporter.scrape()).toContain('quanta_tier_conservation_error{campaign="qianan-2020-b2",activity="A2",tier="A2-20"} 1');
  });
});
