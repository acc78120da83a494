import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CampaignCache } from "@quanta/db";
import { keys, type QuantaRedis } from "@quanta/queue";
import { createLogger } from "@quanta/telemetry";
import { Ownership } from "@quanta/owner";
import { createOwnerWorld, until, type OwnerWorld, type TestWorld } from "@quanta/test-kit";

/**
 * Which worker decides which partition, on the real Postgres and Redis: a lone worker takes every
 * partition; one that joins is handed its fair share (ceil(partitions / live workers)) without an
 * operator; a partition has one owner at a time, in Redis (its lease) and in Postgres (its row),
 * and a change of owner bumps its epoch, which fences the former owner's commits. A worker that
 * stops hands its partitions back: the other takes them well within a lease, not after it.
 */
const PARTITIONS = 4;
// Long enough that "taken within a lease" can only mean "handed back", never "expired".
const LEASE_MS = 10_000;

let owner: OwnerWorld;
let world: TestWorld;
let redis: QuantaRedis;
let campaigns: CampaignCache;
const log = createLogger("ownership-test", "silent");
const started: Ownership[] = [];

beforeAll(async () => {
  owner = await createOwnerWorld("ownership", PARTITIONS);
  ({ world, redis, campaigns } = owner);
});

afterAll(async () => {
  for (const o of started) await o.stop().catch(() => undefined);
  await owner?.close();
});

async function startWorker(workerId: string): Promise<Ownership> {
  const ownership = new Ownership(world.db.kysely, world.db.pool, redis, campaigns, log, {
    workerId,
    prefix: world.prefix,
    partitionCount: PARTITIONS,
    leaseMs: LEASE_MS,
    jobsMax: 4,
    batchMax: 64,
    roundGapMs: 0,
    maxStalledCount: 1,
  });
  started.push(ownership);
  await ownership.start();
  return ownership;
}

/** Each partition's owner and epoch as Postgres has them. */
async function rows(): Promise<Map<number, { owner: string | null; epoch: number }>> {
  const found = await world.db.kysely.selectFrom("partitions").select(["partition", "owner", "epoch"]).execute();
  return new Map(found.map((r) => [r.partition, { owner: r.owner, epoch: Number(r.epoch) }]));
}

const leaseHolder = (partition: number) => redis.get(keys.lease(world.prefix, partition));

describe("partition ownership", () => {
  let a: Ownership;
  let b: Ownership;

  it("hands a joining worker its fair share; every partition has one owner, its epoch bumped when it moved", async () => {
    a = await startWorker("worker-a-00a1");
    await until("the lone worker owns every partition", 20_000, () => a.owned().length === PARTITIONS);
    const alone = await rows();
    for (let p = 0; p < PARTITIONS; p++) expect(alone.get(p)?.owner).toBe("worker-a-00a1");

    b = await startWorker("worker-b-00b2");
    await until("two partitions each", 20_000, () => a.owned().length === 2 && b.owned().length === 2);
    expect([...a.owned(), ...b.owned()].sort()).toEqual([0, 1, 2, 3]);
    const shared = await rows();
    for (const p of b.owned()) {
      expect(shared.get(p)?.owner).toBe("worker-b-00b2");
      expect(shared.get(p)!.epoch).toBeGreaterThan(alone.get(p)!.epoch);
      expect(await leaseHolder(p)).toBe("worker-b-00b2");
    }
    for (const p of a.owned()) {
      expect(shared.get(p)).toEqual(alone.get(p));
      expect(await leaseHolder(p)).toBe("worker-a-00a1");
    }
  });

  it("takes back a stopping worker's partitions well within a lease", async () => {
    const handed = b.owned();
    const before = await rows();
    const stoppedAtMs = Date.now();
    await b.stop();
    expect(b.owned()).toEqual([]);
    await until("the remaining worker owns every partition", 20_000, () => a.owned().length === PARTITIONS);
    expect(Date.now() - stoppedAtMs).toBeLessThan(LEASE_MS);
    const after = await rows();
    for (const p of handed) {
      expect(after.get(p)?.owner).toBe("worker-a-00a1");
      expect(after.get(p)!.epoch).toBeGreaterThan(before.get(p)!.epoch);
      expect(await leaseHolder(p)).toBe("worker-a-00a1");
    }
  });
});
