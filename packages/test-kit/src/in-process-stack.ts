import { parseEnv } from "@quanta/config";
import type { Campaign } from "@quanta/domain";
import { PATIENT_ENV, createTestWorld, type TestWorld } from "./world.js";
import { CallbackClient } from "@quanta/loadtest";
import { startIngress, type RunningIngress } from "@quanta/ingress";
import { startWorker, type RunningWorker } from "@quanta/worker";
import { until } from "./poll.js";

/**
 * The whole stack in the test process, on the machine's real Postgres and Redis: an isolated
 * world (own database and Redis prefix), N workers, one ingress, a signed client. close() stops
 * it all in reverse and removes the world, also after a failed start. It returns once the workers
 * share every partition fairly, as a deployment has settled before an opening minute: a payment
 * sent while the second worker is still taking its share over waits on that hand-over, and on two
 * busy cores that wait can outlast the ingress's decision wait (a 202 where a test expects 200).
 * Its ingress waits for decisions as long as the setting allows (PATIENT_ENV).
 */
export interface InProcessStack {
  world: TestWorld;
  ingress: RunningIngress;
  workers: RunningWorker[];
  client: CallbackClient;
  /** A client of the world's second acquirer (acq-other), on the ingress; close() closes it too. */
  otherClient(connections: number): CallbackClient;
  close(): Promise<void>;
}

export async function startInProcessStack(
  name: string,
  options: { campaigns?: Campaign[]; workers?: number; connections?: number } = {},
): Promise<InProcessStack> {
  const world = await createTestWorld(name, {
    ...(options.campaigns ? { campaigns: options.campaigns } : {}),
    env: PATIENT_ENV,
  });
  const workers: RunningWorker[] = [];
  let ingress: RunningIngress | undefined;
  let client: CallbackClient | undefined;
  const others: CallbackClient[] = [];
  // Each step runs whatever the one before it threw, so a failed close leaks nothing after it.
  const close = async () => {
    const steps = [
      ...others.map((other) => () => other.close()),
      () => client?.close(),
      () => ingress?.close(),
      ...workers.map((w) => () => w.close()),
      () => world.cleanup(),
    ];
    const failures: unknown[] = [];
    for (const step of steps) await Promise.resolve(step()).catch((error: unknown) => failures.push(error));
    if (failures.length > 0) throw failures[0];
  };
  try {
    const env = parseEnv(world.env);
    for (let i = 0; i < (options.workers ?? 2); i++) workers.push(await startWorker(env));
    await settled(workers, env.QUANTA_PARTITIONS);
    ingress = await startIngress(env);
    client = new CallbackClient(
      `http://127.0.0.1:${ingress.port}`,
      world.acquirerId,
      world.secret,
      options.connections ?? 64,
    );
  } catch (error) {
    await close();
    throw error;
  }
  const port = ingress.port;
  const otherClient = (connections: number) => {
    const other = new CallbackClient(`http://127.0.0.1:${port}`, "acq-other", world.otherSecret, connections);
    others.push(other);
    return other;
  };
  return { world, ingress, workers, client, otherClient, close };
}

/** Waits until every partition is owned and no worker holds more than its fair share. */
async function settled(workers: readonly RunningWorker[], partitions: number): Promise<void> {
  const share = Math.ceil(partitions / workers.length);
  await until(`${workers.length} workers sharing ${partitions} partitions`, 30_000, () => {
    const owned = workers.map((w) => w.ownership.owned());
    return new Set(owned.flat()).size === partitions && owned.every((o) => o.length <= share);
  });
}
