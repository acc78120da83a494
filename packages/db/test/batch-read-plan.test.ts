import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { BATCH_READ_SQL } from "@quanta/db";
import { createTestWorld, type TestWorld } from "@quanta/test-kit";

/**
 * The batch read looks every payer and txn up by key, however many grants the campaign holds and
 * however stale the planner's statistics are. In a rush autovacuum analyses `attempts` minutes
 * behind the grants; with "payer_id = any()" the planner then read every grant through the by-tier
 * index on each batch (2.5 ms per partition at 10,000 grants). Here: statistics taken while the
 * table was empty, then 3,000 grants, then the read of a 40-attempt batch, planned both ways the
 * processes plan it (the ingress's pool forces generic plans; custom plans for the others).
 */
const GRANTS = 3_000;
const BATCH = 40;
let world: TestWorld;
let client: pg.Client;

beforeAll(async () => {
  world = await createTestWorld("batch_read_plan", { partitions: 1 });
  client = new pg.Client({ connectionString: world.databaseUrl, options: "-c jit=off -c enable_seqscan=off" });
  await client.connect();
  await client.query("alter table attempts set (autovacuum_enabled = off)");
  await client.query("analyze attempts");
  await client.query(
    `insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, partition,
                           status, campaign_id, activity_id, tier_id, discount_fen, payable_fen, decided_by)
     select 'acq', 'g-' || i, 'h', 'P' || lpad(i::text, 6, '0'), 'M-0001', 250000, now(), now(), 0,
            'granted', 'qianan-2020-b2', 'A2', 'A2-400', 40000, 210000, 'worker'
       from generate_series(1, $1::int) i`,
    [GRANTS],
  );
});

afterAll(async () => {
  await client?.end();
  await world?.cleanup();
});

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows": number;
  Plans?: PlanNode[];
}

/** Every scan of `attempts` in a plan, with the rows it produced per loop. */
function attemptScans(node: PlanNode, out: PlanNode[] = []): PlanNode[] {
  if (node["Relation Name"] === "attempts" || node["Index Name"]?.startsWith("attempts")) out.push(node);
  for (const child of node.Plans ?? []) attemptScans(child, out);
  return out;
}

// Half the batch are payers who already hold a voucher, half new ones; txns are all new.
const values = [
  [0, 0],
  ["qianan-2020-b2", "qianan-2020-b2"],
  ["A2-400", "A2-200"],
  [0],
  Array.from({ length: BATCH }, () => "acq"),
  Array.from({ length: BATCH }, (_, i) => `new-${i}`),
  Array.from({ length: BATCH }, (_, i) => (i % 2 ? `P${String(i * 50).padStart(6, "0")}` : `NEW${i}`)),
  Array.from({ length: BATCH }, () => "qianan-2020-b2"),
  Array.from({ length: BATCH }, () => "A2"),
];

describe("batch read plan", () => {
  for (const mode of ["force_custom_plan", "force_generic_plan"] as const) {
    it(`reads ${BATCH} attempts by key among ${GRANTS.toLocaleString("en-US")} grants (${mode})`, async () => {
      await client.query("begin");
      try {
        await client.query(`set local plan_cache_mode = ${mode}`);
        await client.query(`prepare batch_read_plan as ${BATCH_READ_SQL}`);
        // EXECUTE takes no bind parameters: the arrays go in as literals (plain ids, nothing to escape but quotes).
        const params = values
          .map((xs) => client.escapeLiteral(`{${xs.map((x) => `"${String(x)}"`).join(",")}}`))
          .join(", ");
        const explained = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
          `explain (analyze, format json) execute batch_read_plan(${params})`,
        );
        const scans = attemptScans(explained.rows[0]!["QUERY PLAN"][0].Plan);
        expect(scans.length).toBeGreaterThan(0);
        // A key lookup yields at most one row per loop; reading the grants yields thousands.
        expect(Math.max(...scans.map((s) => s["Actual Rows"]))).toBeLessThanOrEqual(1);
        const holders = (await client.query<{ holders: unknown[] }>(`execute batch_read_plan(${params})`)).rows[0]!
          .holders;
        expect(holders).toHaveLength(BATCH / 2);
      } finally {
        await client.query("rollback");
        await client.query("deallocate all");
      }
    });
  }
});
