import { waitUntilDecided } from "@quanta/db";
import { runRush, type Progress, type RushRun, type SentRecord } from "@quanta/loadtest";
import { cpuSnapshot, deploymentReport, type DeploymentReport } from "./rush-deployment.js";
import type { RushWorld } from "./rush-world.js";

/**
 * The rush itself: the scenario replayed open-model against the world's ingresses, progress every
 * two seconds, then the wait until every acknowledged attempt is decided, and what each process's
 * CPU cost until then (read before the checks and the refunds add theirs).
 */
export interface RushDrive {
  run: RushRun;
  /** The distinct attempts answered 200 or 202 (forged ones aside): I3 counts each decided once. */
  acked: { acquirerId: string; txnId: string }[];
  deployment: DeploymentReport;
}

export async function driveRush(world: RushWorld): Promise<RushDrive> {
  const { settings, out, services, acquirerId } = world;
  const cpuBefore = cpuSnapshot(services);
  const run = await runRush({
    baseUrl: world.baseUrl,
    moreBaseUrls: world.baseUrls.slice(1),
    acquirerId,
    secret: world.secret,
    scenario: world.scenario,
    seed: settings.seed,
    runId: world.runId,
    connections: 256,
    maxInFlight: settings.maxInFlight ?? 20_000,
    progressEveryMs: 2_000,
    onProgress: (p) => out(progressLine(p)),
  });
  out(`  load done in ${((run.endedAtMs - run.startedAtMs) / 1000).toFixed(1)} s; waiting for the backlog to drain`);

  const acked = uniqueKeys(
    run.records.filter((r) => r.kind !== "forged" && (r.status === 200 || r.status === 202)),
    acquirerId,
  );
  // What is still undecided after the wait is reported by the I3 check.
  await waitUntilDecided(world.db.kysely, acked, {
    timeoutMs: settings.drainTimeoutS * 1000,
    pollMs: 1_000,
    onWait: (n) => out(`  ${n.toLocaleString("en-US")} acknowledged attempts not decided yet`),
  });

  // Every process's CPU once the backlog drained: what the rush cost, before the checks and refunds add theirs.
  const cpuAfter = cpuSnapshot(services);
  const deployment = await deploymentReport(world.db.kysely, {
    ingresses: world.ingresses,
    owners: world.owners,
    records: run.records,
    before: cpuBefore,
    after: cpuAfter,
    prefix: world.prefix,
    partitions: settings.partitions,
    cluster: world.ownRedis,
  });
  return { run, acked, deployment };
}

function progressLine(p: Progress): string {
  return `  t=${p.elapsedS.toFixed(0).padStart(3)}s offered ${Math.round(p.offeredRatePerS).toString().padStart(5)}/s  sent ${p.sent.toLocaleString("en-US").padStart(7)}  answered ${p.answered.toLocaleString("en-US").padStart(7)}  in flight ${String(p.inFlight).padStart(5)}  dropped ${p.dropped}  ${Object.entries(
    p.byStatus,
  )
    .map(([s, n]) => `${s}:${n}`)
    .join(" ")}`;
}

function uniqueKeys(records: readonly SentRecord[], acquirerId: string) {
  const seen = new Set<string>();
  const keys: { acquirerId: string; txnId: string }[] = [];
  for (const r of records) {
    if (seen.has(r.txnId)) continue;
    seen.add(r.txnId);
    keys.push({ acquirerId, txnId: r.txnId });
  }
  return keys;
}
