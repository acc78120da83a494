import type { Queue } from "bullmq";
import { OutcomeUnknownError } from "@quanta/db";
import { waitForReplicas, type BatchJob, type Cluster, type ReplicaCounts, type jobOptions } from "@quanta/queue";
import { intakeJobsUnreplicated, writesSettling } from "@quanta/telemetry";
import { BoundExceeded, withBound } from "./bounded-wait.js";

/**
 * Adding one queue job so that an answer to the acquirer can rest on it: an add whose reply was
 * lost is settled under the job's own id (addJobSettled), and on a Redis Cluster the add counts
 * once a replica has it (confirmReplicated). Both may send the same add again: a job id of its
 * own makes that add nothing when the first copy landed.
 */

export type JobAddOptions = ReturnType<typeof jobOptions> & { jobId: string };

export interface ReplicationCheck {
  /** A key in the partition's hash slot: WAIT counts the replicas of the master that holds it. */
  key: string;
  /** Replicas that must confirm (QUANTA_REDIS_WAIT_REPLICAS; 0: the master's word). */
  wanted: number;
  timeoutMs: number;
  /** On a cluster: the connection the queues were made with (WAIT must run on the connection that wrote), and its masters' replica counts. */
  replication?: { queueRedis: Cluster; replicas: ReplicaCounts };
}

/** Times a job is added again because the master that acknowledged it died before confirming it. */
const READD_TRIES_MAX = 3;

/** How often a job whose add may have landed is sent again (same id) while settling. */
const SETTLE_POLL_MS = 100;

/**
 * Adds the job. An add whose reply was lost may have landed: then its attempts are queued, not
 * refused. Redis is asked for the job by its id: there, queued; not there, the add failed and
 * nothing was accepted (the caller answers 503). When Redis cannot say, the add is sent again
 * under the same id (it adds nothing if the first landed) for up to settleMs; still no answer:
 * OutcomeUnknownError (the callback is closed unanswered, never told "nothing was accepted";
 * docs/decisions/0012).
 */
export async function addJobSettled(
  queue: Queue,
  job: BatchJob,
  options: JobAddOptions,
  settleMs: number,
): Promise<void> {
  let failure: unknown;
  try {
    await queue.add("batch", job, options);
    return;
  } catch (error) {
    failure = error;
  }
  const found = await queue.getJob(options.jobId).then(
    (j) => (j ? "landed" : "absent"),
    () => "unknown",
  );
  if (found === "landed") return;
  if (found === "absent") throw failure;
  writesSettling.inc({ write: "job" });
  const deadline = performance.now() + settleMs;
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
    if (
      await queue.add("batch", job, options).then(
        () => true,
        () => false,
      )
    )
      return;
  }
  throw new OutcomeUnknownError(
    `queue job ${options.jobId} may or may not have been added; Redis did not say within ${settleMs} ms`,
    { cause: failure },
  );
}

/**
 * On a Redis Cluster, a master acknowledges an add before its replicas have it: were it to die
 * then, its promoted replica would not know the job, and an attempt answered 202 would never be
 * decided. So the add counts once `wanted` replicas (QUANTA_REDIS_WAIT_REPLICAS) confirm it (WAIT on the master's
 * own connection). When the master is gone before confirming, the job is added again, under its
 * own id, to the promoted replica: if the first copy got there, nothing is added. Counted, not
 * waited for: a replica that is only late (the job is on the master's AOF; that master is asked
 * for none until its replicas are counted again), and a master with no replica connected (after
 * a failover, until its peer is back): WAIT would hold its connection for the whole timeout on
 * every job (docs/decisions/0003).
 * Never throws once the first add succeeded: the attempts are queued, whatever it says.
 */
export async function confirmReplicated(
  queue: Queue,
  job: BatchJob,
  options: JobAddOptions,
  { key, wanted, timeoutMs, replication }: ReplicationCheck,
): Promise<void> {
  if (wanted === 0 || !replication) return;
  for (let tries = 0; ; tries++) {
    const replicas = Math.min(wanted, replication.replicas.of(key));
    if (replicas === 0) {
      intakeJobsUnreplicated.inc({ why: "no_replica" });
      return;
    }
    try {
      const confirmed = await withBound(
        waitForReplicas(replication.queueRedis, key, replicas, timeoutMs),
        timeoutMs + 1_000,
        "WAIT did not return",
      );
      if (confirmed < replicas) {
        // A late replica would hold this master's connection for the whole timeout on every job:
        // ask it for none until the next count of its replicas.
        intakeJobsUnreplicated.inc({ why: "replica_late" });
        replication.replicas.markLagging(key);
      }
      return;
    } catch (error) {
      if (error instanceof BoundExceeded) {
        // Our own bound ran out (the connection is busy), not the master: count it, add nothing.
        intakeJobsUnreplicated.inc({ why: "replica_late" });
        replication.replicas.markLagging(key);
        return;
      }
      if (tries >= READD_TRIES_MAX) {
        intakeJobsUnreplicated.inc({ why: "master_lost" });
        return;
      }
      // The same job id: if the first copy reached the promoted replica, this adds nothing.
      const added = await queue.add("batch", job, options).then(
        () => true,
        () => false,
      );
      if (!added) {
        intakeJobsUnreplicated.inc({ why: "master_lost" });
        return;
      }
    }
  }
}
