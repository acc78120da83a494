import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrivateRedisCluster, killService, stopService, type ServiceProcess } from "@quanta/cli";
import {
  createTestWorld,
  expectNoDeadlock,
  expectRefusalsUndecided,
  rushDuring,
  sleep,
  startServices,
  verdict,
  type TestWorld,
} from "@quanta/test-kit";
import { keys, slotOf } from "@quanta/queue";

/**
 * Faults on a Redis Cluster: 3 masters with one replica each (AOF always on every node), 3
 * partitions (one per master). First, three ingresses and four workers, one ingress and one worker
 * SIGKILLed mid-rush. Then two ingresses and two workers, and the master that serves partition 0 is
 * SIGKILLed; its replica is promoted (cluster-node-timeout 2 s). What the contract promises
 * (docs/callback-contract.md, "Redis Cluster"): every attempt answered 200 or 202 is decided,
 * exactly once, and answers agree with the stored decisions; callbacks that arrive while the
 * partition has no master are answered 503 (nothing accepted) or held until it has one again.
 */
let cluster: PrivateRedisCluster;
let world: TestWorld;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  cluster = await PrivateRedisCluster.start();
  world = await createTestWorld("faults_redis_cluster", {
    partitions: 3,
    env: { REDIS_URL: cluster.url, QUANTA_LEASE_MS: "3000" },
  });
}, 120_000);

afterAll(async () => {
  await Promise.all(services.map((s) => stopService(s, 3_000)));
  await world?.cleanup();
  await cluster?.stop();
});

describe("Redis Cluster faults", () => {
  it(
    "three ingresses and four workers on the cluster: one ingress and one worker SIGKILLed mid-rush, nothing acknowledged lost",
    { timeout: 300_000 },
    async () => {
      const { ports, ingresses, workers } = await startServices(world, services, { ingresses: 3, workers: 4 });
      const mine = [...ingresses, ...workers];
      const run = await rushDuring(
        world,
        ports[0]!,
        { rate: 150, seconds: 16, runId: "rcw", morePorts: ports.slice(1) },
        async () => {
          await sleep(5_000);
          await killService(ingresses[2]!); // answering a third of the callbacks
          await sleep(2_000);
          await killService(workers[0]!); // deciding its partition's rounds
        },
      );
      expect(run.records.some((r) => r.status === 0 && r.ingress === 2)).toBe(true); // the ingress's death was felt
      expect(
        run.records.filter((r) => r.status === 200 && r.sentAtMs > run.startedAtMs + 12_000).length,
      ).toBeGreaterThan(0); // and the rush went on
      const v = await verdict(world, "redis cluster: 3 ingresses + 4 workers, one of each SIGKILLed", run);
      expect(v.lost).toBe(0);
      expect(v.acknowledged).toBeGreaterThan(0);
      await Promise.all(mine.map((s) => stopService(s, 3_000)));
    },
  );

  it(
    "SIGKILL of the master serving a partition mid-rush: its replica takes over and no acknowledged attempt is lost",
    { timeout: 300_000 },
    async () => {
      const slot = slotOf(keys.backlog(world.prefix, 0));
      const before = await cluster.masterOf(slot);
      const { ports } = await startServices(world, services, { ingresses: 2, workers: 2 });
      const run = await rushDuring(
        world,
        ports[0]!,
        { rate: 150, seconds: 20, runId: "rck", morePorts: ports.slice(1) },
        async () => {
          await sleep(6_000);
          await cluster.kill(before);
        },
      );
      // The failover happened: the slot is served by another node, and the cluster is whole again.
      await cluster.waitHealthy(30_000);
      const after = await cluster.masterOf(slot);
      expect(after).not.toBe(before);
      // The kill was felt (answers slowed or refused while the slot had no master) and the rush went on after it.
      const lastSeconds = run.records.filter((r) => r.sentAtMs > run.startedAtMs + 17_000 && r.status === 200);
      expect(lastSeconds.length).toBeGreaterThan(0);
      // The promoted replica has no replica of its own: the ingresses saw that and stopped asking it
      // for one (WAIT would block), counting the jobs that are on one node only.
      const metrics = await Promise.all(ports.map(async (p) => (await fetch(`http://127.0.0.1:${p}/metrics`)).text()));
      const alone = metrics.map((m) =>
        Number(/quanta_intake_jobs_unreplicated_total\{why="no_replica"\} (\d+)/.exec(m)?.[1] ?? 0),
      );
      expect(alone.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      // Refused while the slot had no master: "nothing was accepted" (a txn answered 503 and sent once has no decision).
      const refused = await expectRefusalsUndecided(world, run);
      expect(refused.length).toBeGreaterThan(0);
      const v = await verdict(
        world,
        `redis cluster: master of partition 0 (port ${before}) SIGKILLed, replica ${after} promoted`,
        run,
      );
      expect(v.lost).toBe(0);
      expect(v.acknowledged).toBeGreaterThan(0);
    },
  );

  it("saw no deadlock in Postgres", async () => {
    await expectNoDeadlock(world, services);
  });
});
