import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { stopService, type ServiceProcess } from "@quanta/cli";
import {
  PrivateRedis,
  createTestWorld,
  expectNoDeadlock,
  expectRefusalsUndecided,
  rushDuring,
  sleep,
  startServices,
  verdict,
  type TestWorld,
} from "@quanta/test-kit";

/**
 * Redis faults, on a private Redis started with the shipped infra/redis/redis.conf (AOF with
 * appendfsync always, noeviction): SIGKILL mid-rush and a restart from its AOF must lose no
 * acknowledged attempt; a stalled Redis (CLIENT PAUSE) must make the ingress answer 503 for what
 * it could not admit, and never 2xx without a durable record.
 */
let redis: PrivateRedis;
let world: TestWorld;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  redis = await PrivateRedis.start();
  world = await createTestWorld("faults_redis", { env: { REDIS_URL: redis.url, QUANTA_LEASE_MS: "3000" } });
}, 120_000);

afterAll(async () => {
  await Promise.all(services.map((s) => stopService(s, 3_000)));
  await world?.cleanup();
  await redis?.stop();
});

describe("Redis faults", () => {
  it(
    "SIGKILL of Redis mid-rush, restarted from its AOF: no acknowledged attempt lost",
    { timeout: 300_000 },
    async () => {
      const { ports } = await startServices(world, services, { ingresses: 1, workers: 2 });
      const run = await rushDuring(world, ports[0]!, { rate: 200, seconds: 16, runId: "rk" }, async () => {
        await sleep(5_000);
        await redis.kill();
        await sleep(1_500);
        await redis.start();
      });
      expect(run.records.some((r) => r.status === 503 || r.status === 0)).toBe(true); // the crash was felt
      await verdict(world, "redis SIGKILL + restart (AOF always)", run);
    },
  );

  it(
    "a paused Redis: the ingress answers 503 for what it could not admit, and a 503 is never decided",
    { timeout: 300_000 },
    async () => {
      const ingress = services.find((s) => s.kind === "ingress")!;
      const admin = new Redis(redis.url);
      try {
        const run = await rushDuring(world, ingress.port, { rate: 100, seconds: 12, runId: "rp" }, async () => {
          await sleep(4_000);
          await admin.call("CLIENT", "PAUSE", "4000", "ALL");
        });
        const refused = await expectRefusalsUndecided(world, run);
        expect(refused.length).toBeGreaterThan(50);
        await verdict(world, "redis paused 4 s (CLIENT PAUSE ALL)", run);
      } finally {
        admin.disconnect();
      }
    },
  );

  it("saw no deadlock in Postgres", async () => {
    await expectNoDeadlock(world, services);
  });
});
