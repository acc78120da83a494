import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { createTestWorld, type TestWorld } from "@quanta/test-kit";
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
    expect(await exporter.scrape()).toContain(
      'quanta_tier_conservation_error{campaign="qianan-2020-b2",activity="A2",tier="A2-20"} 1',
    );
  });

  it("counts a voucher a refund returned as stock again, not as a broken conservation", async () => {
    const exporter = createExporter(world.db.kysely, redis, world.prefix);
    const db = world.db.kysely;
    await sql`update tiers set pool = pool - 1 where id = 'A2-20'`.execute(db);
    // A grant of A2-50 (stock taken from the pool), then its refund (the voucher back in the pool).
    await sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, partition,
                                    decided_by, status, campaign_id, activity_id, tier_id, discount_fen, payable_fen)
              values ('acq', 'ex-1', 'h', 'ex-payer', 'M-0001', 30000, now(), now(), 0, 'worker', 'granted', 'qianan-2020-b2', 'A2', 'A2-50', 5000, 25000)`.execute(
      db,
    );
    await sql`update tiers set pool = pool - 1 where id = 'A2-50'`.execute(db);
    const label = '{campaign="qianan-2020-b2",activity="A2",tier="A2-50"}';
    let text = await exporter.scrape();
    expect(text).toContain(`quanta_tier_granted${label} 1`);
    expect(text).toContain(`quanta_tier_conservation_error${label} 0`);
    expect(text).toContain('quanta_activity_discount_held_fen{campaign="qianan-2020-b2",activity="A2"} 5000');
    // The former name, kept for one release, carries the same value.
    expect(text).toContain('quanta_activity_discount_granted_fen{campaign="qianan-2020-b2",activity="A2"} 5000');
    expect(text).toContain(
      "# HELP quanta_activity_discount_granted_fen Deprecated alias of quanta_activity_discount_held_fen; removed in the next release.",
    );
    await sql`update attempts set voucher_returned_at = now() where txn_id = 'ex-1'`.execute(db);
    await sql`update tiers set pool = pool + 1 where id = 'A2-50'`.execute(db);
    text = await exporter.scrape();
    expect(text).toContain(`quanta_tier_granted${label} 1`);
    expect(text).toContain(`quanta_tier_returned${label} 1`);
    expect(text).toContain(`quanta_tier_remaining${label} 500`);
    expect(text).toContain(`quanta_tier_conservation_error${label} 0`);
    expect(text).toContain('quanta_activity_discount_held_fen{campaign="qianan-2020-b2",activity="A2"} 0');
    expect(text).toContain('quanta_activity_discount_granted_fen{campaign="qianan-2020-b2",activity="A2"} 0');
  });
});
