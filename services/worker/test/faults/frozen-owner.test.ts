import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { startService, stopService, type ServiceProcess } from "@quanta/cli";
import {
  createTestWorld,
  expectNoDeadlock,
  rushDuring,
  sleep,
  startServices,
  until,
  verdict,
  type TestWorld,
} from "@quanta/test-kit";

/**
 * Issue #19, item 1: an owner frozen *inside* a round, between its read (partition rows, shares
 * locked FOR UPDATE) and its write. The worker stops itself there (QUANTA_FAULT_STOP_AFTER_READ_ROUND,
 * a real SIGSTOP of the whole process, lease renewals included). Its session sits "idle in
 * transaction" holding the rows the next owner's claim must update; Postgres ends it after
 * QUANTA_PG_IDLE_IN_TX_TIMEOUT_MS (default 5 s), so the partitions move while the owner is still
 * frozen, and every acknowledged attempt is decided once. Without that bound the frozen session
 * lives as long as its TCP connection and the partitions never move here.
 */
const LEASE_MS = 3_000;
const IDLE_IN_TX_TIMEOUT_MS = 5_000;
/** Lease + the server's idle bound + slack for a loaded 2-core box: without the bound, never. */
const MOVE_DEADLINE_MS = LEASE_MS + IDLE_IN_TX_TIMEOUT_MS + 20_000;

let world: TestWorld;
const services: ServiceProcess[] = [];
let port = 0;

beforeAll(async () => {
  world = await createTestWorld("faults_frozen_owner", {
    env: { QUANTA_LEASE_MS: String(LEASE_MS), QUANTA_PG_IDLE_IN_TX_TIMEOUT_MS: String(IDLE_IN_TX_TIMEOUT_MS) },
  });
  port = (await startServices(world, services, { ingresses: 1, workers: 0 })).ports[0]!;
}, 120_000);

afterAll(async () => {
  for (const s of services) if (s.child.exitCode === null) s.child.kill("SIGCONT");
  await Promise.all(services.map((s) => stopService(s, 3_000)));
  await world?.cleanup();
});

/** The process state letter from /proc (T: stopped). */
const procState = (pid: number) => /\) (\w) /.exec(readFileSync(`/proc/${pid}/stat`, "utf8"))?.[1];

const owners = async () =>
  (
    await sql<{
      partition: number;
      owner: string | null;
      epoch: number;
    }>`select partition, owner, epoch from partitions order by partition`.execute(world.db.kysely)
  ).rows;

describe("an owner frozen inside a round", () => {
  it(
    "its session is ended by the server, its partitions move while it is still frozen, and every acknowledged attempt is decided once",
    { timeout: 300_000 },
    async () => {
      // The frozen one starts first so that it owns partitions before the other arrives.
      const frozen = await startService("worker", { ...world.env, QUANTA_FAULT_STOP_AFTER_READ_ROUND: "40" });
      services.push(frozen);
      const other = await startService("worker", world.env);
      services.push(other);
      await until("both workers own partitions", 30_000, async () => {
        const o = new Set((await owners()).map((r) => r.owner));
        return o.has(frozen.id) && o.has(other.id) ? true : undefined;
      });

      let evidence:
        | { partitions: number[]; frozenPids: number[]; movedMs: number; stillStopped: boolean; sessionsLeft: number }
        | undefined;
      const run = await rushDuring(world, port, { rate: 150, seconds: 24, runId: "fo" }, async () => {
        await until("the worker stopped itself inside a round", 30_000, async () =>
          procState(frozen.child.pid!) === "T" ? true : undefined,
        );
        const stoppedAt = Date.now();
        const partitions = (await owners()).filter((r) => r.owner === frozen.id).map((r) => r.partition);
        // Its round's session: idle inside a transaction whose last statement was the round's read.
        const frozenPids = await until("the frozen round's session idle in transaction", 10_000, async () => {
          const rows = (
            await sql<{ pid: number }>`
            select pid from pg_stat_activity
             where datname = current_database() and application_name = 'quanta-worker'
               and state = 'idle in transaction' and now() - state_change > interval '1 second'`.execute(
              world.db.kysely,
            )
          ).rows;
          return rows.length > 0 ? rows.map((r) => r.pid) : undefined;
        });
        await until("the frozen owner's partitions taken by the other worker", MOVE_DEADLINE_MS, async () => {
          const now = await owners();
          return partitions.every((p) => now.find((r) => r.partition === p)?.owner === other.id) ? true : undefined;
        });
        const movedMs = Date.now() - stoppedAt;
        const stillStopped = procState(frozen.child.pid!) === "T";
        const sessionsLeft = (
          await sql<{
            n: number;
          }>`select count(*)::int as n from pg_stat_activity where pid = any(${frozenPids})`.execute(world.db.kysely)
        ).rows[0]!.n;
        evidence = { partitions, frozenPids, movedMs, stillStopped, sessionsLeft };
        await sleep(2_000);
        frozen.child.kill("SIGCONT");
      });

      expect(evidence).toBeDefined();
      const e = evidence!;
      console.log(
        `fault frozen owner: partitions [${e.partitions.join(", ")}] moved ${e.movedMs} ms after the SIGSTOP (lease ${LEASE_MS} ms, idle bound ${IDLE_IN_TX_TIMEOUT_MS} ms)`,
      );
      expect(e.partitions.length).toBeGreaterThan(0);
      expect(e.stillStopped).toBe(true); // moved while the owner was frozen, not because it thawed
      expect(e.sessionsLeft).toBe(0); // the server ended the frozen round's session
      const v = await verdict(world, "worker SIGSTOPped between its round's read and write", run);
      expect(v.acknowledged).toBeGreaterThan(0);
    },
  );

  it("saw no deadlock in Postgres", async () => {
    await expectNoDeadlock(world, services);
  });
});
