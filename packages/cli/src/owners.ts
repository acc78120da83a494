import type { ServiceProcess } from "./stack.js";

/** Which worker process owns which partitions (from each worker's /healthz). */
export type Owners = { pid: number; partitions: number[] }[];

export async function ownersOf(workers: readonly ServiceProcess[]): Promise<Owners> {
  return Promise.all(
    workers.map(async (w) => {
      const res = await fetch(`http://127.0.0.1:${w.port}/healthz`).catch(() => undefined);
      const partitions = res?.ok ? (((await res.json()) as { partitions?: number[] }).partitions ?? []) : [];
      return { pid: w.child.pid ?? 0, partitions };
    }),
  );
}

/**
 * Waits until the workers own every partition between them, each its fair share (a settled
 * deployment, as before an opening minute), and says who owns what; throws after timeoutMs.
 */
export async function waitForOwners(
  workers: readonly ServiceProcess[],
  partitions: number,
  timeoutMs: number,
): Promise<Owners> {
  const share = Math.ceil(partitions / Math.max(1, workers.length));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const owners = await ownersOf(workers);
    const owned = new Set(owners.flatMap((o) => o.partitions));
    if (owned.size === partitions && owners.every((o) => o.partitions.length <= share)) return owners;
    if (Date.now() > deadline)
      throw new Error(
        `the workers did not settle on the ${partitions} partitions within ${timeoutMs} ms: ${JSON.stringify(owners)}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}
