import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { stopService, type ServiceProcess } from "@quanta/cli";
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

/**
 * Postgres stopped with `-m immediate` (no checkpoint, like a crash: recovery replays the WAL) in
 * the middle of a rush, and started again 3 s later. This is the machine's own cluster: the fault
 * suite runs after every other test, one file at a time. Callbacks during the outage get 503 or
 * wait; what was acknowledged survives the restart and is decided once.
 */
const CLUSTER = process.env.QUANTA_FAULT_PG_CLUSTER ?? readdirSync("/etc/postgresql").sort()[0]!;
const pgctl = (action: "stop" | "start") =>
  execFileSync(
    "pg_ctlcluster",
    ["--skip-systemctl-redirect", CLUSTER, "main", action, ...(action === "stop" ? ["-m", "immediate"] : [])],
    { stdio: "pipe" },
  );

let world: TestWorld;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  world = await createTestWorld("faults_pg", { env: { QUANTA_LEASE_MS: "3000" } });
}, 120_000);

afterAll(async () => {
  await Promise.all(services.map((s) => stopService(s, 3_000)));
  await world?.cleanup();
});

describe("Postgres faults", () => {
  it(
    "Postgres stopped -m immediate mid-rush and started again: nothing acknowledged is lost",
    { timeout: 300_000 },
    async () => {
      const { ports } = await startServices(world, services, { ingresses: 1, workers: 2 });
      const run = await rushDuring(world, ports[0]!, { rate: 150, seconds: 16, runId: "pg" }, async () => {
        await sleep(5_000);
        try {
          pgctl("stop");
          await sleep(3_000);
        } finally {
          pgctl("start");
        }
        for (let i = 0; i < 60; i++) {
          try {
            execFileSync("pg_isready", ["-h", "127.0.0.1", "-p", "5432", "-q"]);
            break;
          } catch {
            await sleep(250);
          }
        }
      });
      expect(run.records.some((r) => r.status === 503 || r.status === 0)).toBe(true); // the outage was felt
      // A write whose reply the crash swallowed is settled, or left unanswered, never 503.
      await expectRefusalsUndecided(world, run);
      await verdict(world, "Postgres stop -m immediate for 3 s, then start", run);
    },
  );

  it("saw no deadlock in Postgres", async () => {
    await expectNoDeadlock(world, services);
  });
});
