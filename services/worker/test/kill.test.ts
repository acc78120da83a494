import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "node:net";
import { createTestWorld, killService, startService, stopService, type ServiceProcess, type TestWorld } from "@quanta/cli";
import { findAttempts, rowDecision, verifyDatabaseInvariants, waitUntilDecided } from "@quanta/db";
import { decisionBody } from "@quanta/contract";
import { loadScenario, runRush } from "@quanta/loadtest";

/**
 * Durability of an answer (issue #2): after a 200/202, kill -9 of a worker or
 * of the ingress loses nothing and decides nothing twice. A rush runs against
 * an ingress on a fixed port while workers and the ingress are killed; the
 * ingress comes back on the same port, the surviving workers take over the
 * dead one's partitions without anyone telling them to. Two deployments:
 * every attempt through the queue (QUANTA_INGRESS_DECIDES=false, workers own
 * the partitions), and the default, where the ingress owns them and decides
 * itself while the workers stand by until it dies.
 */
let world: TestWorld;
let ownerWorld: TestWorld;
const services: ServiceProcess[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The partitions a worker or an ingress says it owns. */
async function healthOf(service: ServiceProcess): Promise<number[]> {
  const res = await fetch(`http://127.0.0.1:${service.port}/healthz`);
  return ((await res.json()) as { partitions: number[] }).partitions;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  world = await createTestWorld("kill", { env: { QUANTA_LEASE_MS: "3000", QUANTA_INGRESS_DECIDES: "false" } });
  ownerWorld = await createTestWorld("kill_owner", { env: { QUANTA_LEASE_MS: "3000" } });
});

afterAll(async () => {
  await Promise.all(services.map((s) => stopService(s, 3_000)));
  await world?.cleanup();
  await ownerWorld?.cleanup();
});

async function ownedBy(services: readonly ServiceProcess[]): Promise<Set<number>> {
  const owned = new Set<number>();
  for (const s of services) for (const p of await healthOf(s).catch(() => [])) owned.add(p);
  return owned;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
  return Date.now() - started;
}

/** Every acknowledged attempt decided once, every 200 the stored decision, I1-I6. */
async function expectNothingLost(w: TestWorld, run: Awaited<ReturnType<typeof runRush>>): Promise<number> {
  const acked = run.records.filter((r) => r.kind !== "forged" && (r.status === 200 || r.status === 202));
  const keys = [...new Set(acked.map((r) => r.txnId))].map((txnId) => ({ acquirerId: w.acquirerId, txnId }));
  expect(await waitUntilDecided(w.db.kysely, keys, { timeoutMs: 120_000, pollMs: 500 })).toEqual([]);
  const rows = await findAttempts(w.db.kysely, keys);
  const stored = new Map(rows.map((row) => [row.txn_id, JSON.stringify(decisionBody(row.txn_id, rowDecision(row)))]));
  const differing = acked.filter((r) => r.status === 200 && r.kind !== "conflict" && JSON.stringify(r.answer) !== stored.get(r.txnId));
  expect(differing).toEqual([]);
  const checks = await verifyDatabaseInvariants(w.db.kysely, "qianan-2020-b2");
  expect(checks.filter((c) => !c.ok)).toEqual([]);
  return keys.length;
}

describe("kill -9 during a rush", () => {
  it("loses no acknowledged attempt, decides none twice, and moves a dead worker's partitions within seconds", { timeout: 300_000 }, async () => {
    const port = await freePort();
    const env = { ...world.env, PORT: String(port) };
    let ingress = await startService("ingress", env);
    services.push(ingress);
    const workers = [await startService("worker", env), await startService("worker", env), await startService("worker", env)];
    services.push(...workers);

    const scenario = { ...loadScenario(), durationS: 24, payers: 20_000, arrival: { peakRatePerS: 250, rampS: 1, plateauS: 23, endFraction: 1 } };
    const load = runRush({ baseUrl: `http://127.0.0.1:${port}`, acquirerId: world.acquirerId, secret: world.secret, scenario, seed: 11, runId: "k", connections: 128, maxInFlight: 10_000 });

    let takeoverMs = Number.NaN;
    const chaos = (async () => {
      await sleep(5_000);
      await killService(workers[0]!); // mid-batch: it was deciding under load
      const killedAt = Date.now();
      for (;;) {
        const owned = new Set([...(await healthOf(workers[1]!)), ...(await healthOf(workers[2]!))]);
        if (owned.size === 4) break;
        if (Date.now() - killedAt > 30_000) throw new Error(`partitions still unowned 30 s after the kill: ${[...owned]}`);
        await sleep(200);
      }
      takeoverMs = Date.now() - killedAt;
      await sleep(3_000);
      await killService(ingress); // right after acknowledging whatever it was answering
      ingress = await startService("ingress", env);
      services.push(ingress);
      await sleep(4_000);
      await killService(workers[1]!);
      services.push(await startService("worker", env));
    })();

    const [run] = await Promise.all([load, chaos]);
    expect(run.records.some((r) => r.status === 0)).toBe(true); // the kills were felt
    const acknowledged = await expectNothingLost(world, run);
    expect(acknowledged).toBeGreaterThan(3_000);
    expect(takeoverMs).toBeLessThan(15_000);
    console.log(`kill test: ${acknowledged} acknowledged, all decided once; partitions taken over ${takeoverMs} ms after kill -9`);
  });

  it("an ingress that owns every partition killed twice: workers stand in while none lives, a new ingress takes them back", { timeout: 300_000 }, async () => {
    const port = await freePort();
    const env = { ...ownerWorld.env, PORT: String(port) };
    let ingress = await startService("ingress", env);
    services.push(ingress);
    const workers = [await startService("worker", env), await startService("worker", env)];
    services.push(...workers);
    await until("the ingress owns every partition", 15_000, async () => (await ownedBy([ingress])).size === 4);
    expect((await ownedBy(workers)).size).toBe(0);

    const scenario = { ...loadScenario(), durationS: 24, payers: 20_000, arrival: { peakRatePerS: 250, rampS: 1, plateauS: 23, endFraction: 1 } };
    const load = runRush({ baseUrl: `http://127.0.0.1:${port}`, acquirerId: ownerWorld.acquirerId, secret: ownerWorld.secret, scenario, seed: 12, runId: "o", connections: 128, maxInFlight: 10_000 });
    const moves: string[] = [];
    const chaos = (async () => {
      for (const round of [1, 2]) {
        await sleep(4_000);
        await killService(ingress); // mid-transaction: it was deciding under load
        const standIn = await until("the workers take every partition", 20_000, async () => (await ownedBy(workers)).size === 4);
        ingress = await startService("ingress", env);
        services.push(ingress);
        const back = await until("the new ingress takes every partition back", 20_000, async () => (await ownedBy([ingress])).size === 4);
        expect((await ownedBy(workers)).size).toBe(0);
        moves.push(`kill ${round}: workers in ${standIn} ms, back to the ingress in ${back} ms`);
      }
    })();
    const [run] = await Promise.all([load, chaos]);
    expect(run.records.some((r) => r.status === 0)).toBe(true); // the kills were felt
    const acknowledged = await expectNothingLost(ownerWorld, run);
    expect(acknowledged).toBeGreaterThan(3_000);
    console.log(`kill test (ingress owns): ${acknowledged} acknowledged, all decided once; ${moves.join("; ")}`);
  });
});
