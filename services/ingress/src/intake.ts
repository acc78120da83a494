import type { Queue } from "bullmq";
import type { Kysely } from "kysely";
import type { Decision, QueuedAttempt } from "@quanta/domain";
import {
  OutcomeUnknownError,
  attemptKey,
  findAttempts,
  type AttemptRow,
  type Database,
  type DecisionRow,
  type ImmediateOutcome,
  type ImmediateRecord,
} from "@quanta/db";
import {
  admitBatch,
  forgetTxns,
  jobOptions,
  keys,
  releaseBacklog,
  waitForReplicas,
  waitKey,
  type AdmitCode,
  type AdmitMode,
  type BatchJob,
  type Cluster,
  type QuantaRedis,
  type ReplicaCounts,
} from "@quanta/queue";
import { intakeAttempts, intakeBatchSize, intakeJobs, intakeJobsUnreplicated, writesSettling } from "@quanta/telemetry";
import type { WaitResult } from "./decision-waiter.js";

/**
 * What the ingress does with an attempt once its body is known: admit it, then queue it for the
 * worker that owns its partition, or store the decision it made itself.
 *
 * Attempts that arrive together travel as one batch: admission (admitBatch, docs/decisions/0010)
 * registers the first body hash of every txn (another body is 409 even before the first is
 * decided or stored) and reserves backlog room, per partition, for what will be queued (past the
 * partition's share of QUANTA_BACKLOG_MAX: 503, nothing accepted). Then, for the batch: one
 * BullMQ job per partition for the attempts that need stock (their callers wait for the decision, published by
 * the worker); the decisions that need no stock go to the ImmediateStore (one statement for many
 * batches); repeats and 409s are checked against Postgres, which answers for every txn whose
 * decision is stored.
 *
 * When a batch leaves: at once when the previous one left at least flushMs ago (an idle intake
 * adds no delay), else flushMs after the previous one; at once when full (batchMax). So under
 * load batches, and the jobs they make, grow with the rate instead of their number: at most
 * 1000 / flushMs jobs a second per partition, each costing Redis the same whatever it carries
 * (docs/decisions/0002).
 * At most pendingMax attempts are held (buffered or in flight); past that, submit answers
 * overloaded without touching Redis.
 *
 * States of an attempt: buffered -> admitting -> queued (its caller waits for the decision) |
 * stored (decision known now) | stale (a sold_out whose tier got stock back: the caller queues it
 * again as a repeat) | conflict | overloaded (nothing accepted) | unavailable (Redis did not
 * admit in time: nothing accepted, and what a late admission takes is taken back) | failed (the
 * error reaches the caller; what admission took for it is taken back, best effort).
 * Trade-off: under load up to flushMs of added latency, for one admission and one job per
 * partition per batch instead of one each per attempt.
 */
export interface IntakeEntry {
  attempt: QueuedAttempt | Omit<QueuedAttempt, "request">;
  /** Set for a decision the ingress makes itself (no stock needed). */
  immediate?: { decision: Decision; checkHolder: boolean; soldOutTiers?: readonly string[] };
}

/** How a queued attempt's decision reaches the ingress (DecisionWaiter: one subscription per process). */
export interface DecisionWaits {
  wait(key: string, timeoutMs: number): { result: Promise<WaitResult>; cancel: () => void };
}

/** Stores the ingress's own decisions (ImmediateStore: group commit). */
export interface ImmediateWrites {
  store(records: readonly ImmediateRecord[]): Promise<ImmediateOutcome>;
}

export type IntakeResult =
  /** In a job for its partition's owner; `decision` settles when the owner publishes it, or times out (202). */
  | { kind: "queued"; decision: Promise<WaitResult> }
  | { kind: "stored"; row: DecisionRow }
  | { kind: "conflict" }
  | { kind: "overloaded" }
  /** Redis did not admit the batch within admitTimeoutMs: nothing was queued or stored. */
  | { kind: "unavailable" }
  /** A sold_out from the marks that a refund cleared meanwhile: nothing was stored; queue it (as a repeat). */
  | { kind: "stale" };

interface Pending {
  entry: IntakeEntry;
  requeue: boolean;
  /** What admission said (set once admitted). */
  code?: AdmitCode;
  resolve: (r: IntakeResult) => void;
  reject: (e: unknown) => void;
}

export interface IntakeOptions {
  prefix: string;
  replyTo: string;
  batchMax: number;
  flushMs: number;
  /** Attempts queued and not yet decided, per partition (backlogMaxPerPartition()). */
  backlogMaxPerPartition: number;
  retentionS: number;
  txnRegistryTtlS: number;
  /** Registry TTL of a txn the ingress stores itself (its key is deleted once the decision is stored). */
  txnInFlightTtlS: number;
  /** How long a queued attempt's caller waits for the decision before answering 202. */
  decisionWaitMs: number;
  admitTimeoutMs: number;
  /** Attempts held at once, buffered or in flight (a stalled Redis must not grow memory without bound). */
  pendingMax: number;
  /** On a Redis Cluster: replicas that must have a job before it counts as accepted (0: the master's word). */
  redisWaitReplicas: number;
  redisWaitTimeoutMs: number;
  /** QUANTA_OUTCOME_SETTLE_MS: how long an add that may have landed is retried under its id. */
  settleMs: number;
}

/** Times a job is added again because the master that acknowledged it died before confirming it. */
const READD_TRIES_MAX = 3;

export interface IntakeStores {
  redis: QuantaRedis;
  queues: readonly Queue[];
  /** On a cluster: the connection the queues were made with (WAIT must run on the connection that wrote), and its masters' replica counts. */
  replication?: { queueRedis: Cluster; replicas: ReplicaCounts };
  db: Kysely<Database>;
  immediates: ImmediateWrites;
  /** Where queued attempts wait for their decision. */
  waits: DecisionWaits;
}

const keyOf = (e: IntakeEntry) => attemptKey(e.attempt.acquirerId, e.attempt.payment.txnId);
const txnOf = (p: Pending) => ({ acquirerId: p.entry.attempt.acquirerId, txnId: p.entry.attempt.payment.txnId });

export class Intake {
  private buffer: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastFlushMs = Number.NEGATIVE_INFINITY;
  private pending = 0;
  /** Numbers this process's queue jobs (their ids: replyTo-serial). */
  private jobSerial = 0;

  constructor(
    private readonly stores: IntakeStores,
    private readonly options: IntakeOptions,
  ) {}

  submit(entry: IntakeEntry, requeue = false): Promise<IntakeResult> {
    if (this.pending >= this.options.pendingMax) return Promise.resolve({ kind: "overloaded" });
    this.pending++;
    const settled = () => void this.pending--;
    return new Promise<IntakeResult>((resolve, reject) => {
      this.buffer.push({ entry, requeue, resolve, reject });
      if (this.buffer.length >= this.options.batchMax) this.flush();
      else this.schedule();
    }).finally(settled);
  }

  private schedule(): void {
    if (this.timer || this.buffer.length === 0) return;
    const waitMs = this.lastFlushMs + this.options.flushMs - performance.now();
    if (waitMs <= 0) queueMicrotask(() => this.flush());
    else this.timer = setTimeout(() => this.flush(), waitMs);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer.splice(0, this.options.batchMax);
    if (batch.length === 0) return;
    this.lastFlushMs = performance.now();
    intakeBatchSize.observe(batch.length);
    void this.admit(batch);
    this.schedule();
  }

  private async admit(batch: Pending[]): Promise<void> {
    let codes: AdmitCode[];
    const admission = admitBatch(
      this.stores.redis,
      this.options.prefix,
      batch.map((p) => ({
        acquirerId: p.entry.attempt.acquirerId,
        txnId: p.entry.attempt.payment.txnId,
        bodyHash: p.entry.attempt.bodyHash,
        mode: modeOf(p),
        partition: p.entry.attempt.partition,
      })),
      {
        backlogMaxPerPartition: this.options.backlogMaxPerPartition,
        ttlS: this.options.txnRegistryTtlS,
        immediateTtlS: this.options.txnInFlightTtlS,
      },
    );
    try {
      codes = (await withTimeout(admission, this.options.admitTimeoutMs)).codes;
    } catch (error) {
      if (!(error instanceof AdmitTimeout)) {
        for (const p of batch) p.reject(error);
        return;
      }
      // Answered 503 (nothing accepted): when the script does run after all, what it registered
      // and reserved for these attempts is taken back, so that a later body of the txn is free.
      for (const p of batch) p.resolve({ kind: "unavailable" });
      void admission
        .then(({ codes: late }) => this.undo(batch.map((p, i) => ({ ...p, code: late[i]! }))))
        .catch(() => undefined);
      return;
    }
    batch.forEach((p, i) => (p.code = codes[i]));

    const toQueue: Pending[] = [];
    const toStore: Pending[] = [];
    const toLookUp: Pending[] = [];
    const conflicts = new Set<Pending>();
    batch.forEach((p) => {
      switch (p.code) {
        case "overloaded":
          return p.resolve({ kind: "overloaded" });
        case "conflict": // another body in flight, or one answered 409 and not forgotten yet: Postgres has the last word
          conflicts.add(p);
          return void toLookUp.push(p);
        case "repeat":
          return void toLookUp.push(p);
        default:
          return void (p.entry.immediate ? toStore : toQueue).push(p);
      }
    });
    this.store(toStore);
    await Promise.all([...byPartition(toQueue)].map(([partition, group]) => this.enqueueNew(partition, group)));
    // After the adds: a look-up that queues a repeat again joins the next batch.
    await this.lookUp(toLookUp, conflicts);
  }

  /** Queues admitted attempts; when the job cannot be added, what admission took for them is taken back. */
  private async enqueueNew(partition: number, toQueue: Pending[]): Promise<void> {
    await this.enqueue(partition, toQueue).catch(async (error) => {
      // A job that may be in Redis keeps what admission took for it: its attempts may be decided.
      if (!(error instanceof OutcomeUnknownError)) await this.undo(toQueue);
      for (const p of toQueue) p.reject(error);
    });
  }

  /**
   * Takes back what admission took for attempts that were not accepted after all: their backlog
   * room (queued ones, codes first and requeued) and their registrations (first sightings), so
   * that a retry, or another body of the txn, is free to be accepted later. Best effort: room is
   * also taken back by the idle-time reset, a registration expires.
   */
  private async undo(ps: readonly Pending[]): Promise<void> {
    const room = new Map<number, number>();
    for (const p of ps) {
      if (p.entry.immediate || (p.code !== "first" && p.code !== "requeued")) continue;
      room.set(p.entry.attempt.partition, (room.get(p.entry.attempt.partition) ?? 0) + 1);
    }
    const registered = ps.filter((p) => p.code === "first").map(txnOf);
    await Promise.all(
      [...room].map(([partition, n]) =>
        releaseBacklog(this.stores.redis, this.options.prefix, partition, n).catch(() => undefined),
      ),
    );
    await forgetTxns(this.stores.redis, this.options.prefix, registered).catch(() => undefined);
  }

  /**
   * One job for the partition's owner. The waits are registered before the job is added: its
   * decision can be published before this process reads the reply to the add.
   */
  private async enqueue(partition: number, toQueue: Pending[]): Promise<void> {
    if (toQueue.length === 0) return;
    // Every attempt queued here took backlog room at admission (codes first and requeued).
    const job: BatchJob = {
      replyTo: this.options.replyTo,
      room: toQueue.length,
      attempts: toQueue.map((p) => p.entry.attempt as QueuedAttempt),
    };
    const waits = toQueue.map((p) =>
      this.stores.waits.wait(
        waitKey(p.entry.attempt.acquirerId, p.entry.attempt.payment.txnId, p.entry.attempt.bodyHash),
        this.options.decisionWaitMs,
      ),
    );
    const queue = this.stores.queues[partition]!;
    // A job id of its own: an add sent again (a resend by the client after a lost connection, or
    // after a failover) finds the job if it landed and adds nothing twice.
    const options = {
      ...jobOptions(this.options.retentionS),
      jobId: `${this.options.replyTo.replace(/:/g, "-")}-${++this.jobSerial}`,
    };
    try {
      await this.addSettled(queue, job, options);
      await this.confirmReplicated(queue, partition, job, options);
    } catch (error) {
      for (const w of waits) w.cancel();
      throw error;
    }
    intakeJobs.inc();
    intakeAttempts.inc(toQueue.length);
    toQueue.forEach((p, i) => p.resolve({ kind: "queued", decision: waits[i]!.result }));
  }

  /**
   * Adds the job. An add whose reply was lost may have landed: then its attempts are queued, not
   * refused. Redis is asked for the job by its id: there, queued; not there, the add failed and
   * nothing was accepted (the caller answers 503). When Redis cannot say, the add is sent again
   * under the same id (it adds nothing if the first landed) for up to settleMs; still no answer:
   * OutcomeUnknownError (the callback is closed unanswered, never told "nothing was accepted";
   * docs/decisions/0012).
   */
  private async addSettled(
    queue: Queue,
    job: BatchJob,
    options: ReturnType<typeof jobOptions> & { jobId: string },
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
    const deadline = performance.now() + this.options.settleMs;
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
      `queue job ${options.jobId} may or may not have been added; Redis did not say within ${this.options.settleMs} ms`,
      { cause: failure },
    );
  }

  /**
   * On a Redis Cluster, a master acknowledges an add before its replicas have it: were it to die
   * then, its promoted replica would not know the job, and an attempt answered 202 would never be
   * decided. So the add counts once `redisWaitReplicas` replicas confirm it (WAIT on the master's
   * own connection). When the master is gone before confirming, the job is added again, under its
   * own id, to the promoted replica: if the first copy got there, nothing is added. Counted, not
   * waited for: a replica that is only late (the job is on the master's AOF; that master is asked
   * for none until its replicas are counted again), and a master with no replica connected (after
   * a failover, until its peer is back): WAIT would hold its connection for the whole timeout on
   * every job (docs/decisions/0003).
   * Never throws once the first add succeeded: the attempts are queued, whatever it says.
   */
  private async confirmReplicated(
    queue: Queue,
    partition: number,
    job: BatchJob,
    options: ReturnType<typeof jobOptions> & { jobId: string },
  ): Promise<void> {
    const { redisWaitReplicas: wanted, redisWaitTimeoutMs: timeoutMs } = this.options;
    const replication = this.stores.replication;
    if (wanted === 0 || !replication) return;
    const key = keys.bull(this.options.prefix, partition, "wait");
    for (let tries = 0; ; tries++) {
      const replicas = Math.min(wanted, replication.replicas.of(key));
      if (replicas === 0) {
        intakeJobsUnreplicated.inc({ why: "no_replica" });
        return;
      }
      try {
        const confirmed = await withTimeout(
          waitForReplicas(replication.queueRedis, key, replicas, timeoutMs),
          timeoutMs + 1_000,
        );
        if (confirmed < replicas) {
          // A late replica would hold this master's connection for the whole timeout on every job:
          // ask it for none until the next count of its replicas.
          intakeJobsUnreplicated.inc({ why: "replica_late" });
          replication.replicas.markLagging(key);
        }
        return;
      } catch (error) {
        if (error instanceof AdmitTimeout) {
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

  /**
   * Stores the ingress's own decisions (group commit); a txn stored before answers with its own
   * row. Once stored, Postgres answers for these txns: their registrations go (best effort, after
   * the answers; a key left behind expires after txnInFlightTtlS).
   */
  private store(toStore: Pending[]): void {
    if (toStore.length === 0) return;
    const records: ImmediateRecord[] = toStore.map((p) => ({
      record: { ...p.entry.attempt, decision: p.entry.immediate!.decision, decidedBy: "ingress" },
      checkHolder: p.entry.immediate!.checkHolder,
      ...(p.entry.immediate!.soldOutTiers ? { soldOutTiers: p.entry.immediate!.soldOutTiers } : {}),
    }));
    this.stores.immediates.store(records).then(
      ({ stored, stale }) => {
        const done: Pending[] = [];
        for (const p of toStore) {
          const row = stored.get(keyOf(p.entry));
          if (!row && stale.has(keyOf(p.entry))) p.resolve({ kind: "stale" });
          else if (!row) p.reject(new Error(`attempt ${p.entry.attempt.payment.txnId} was neither stored nor found`));
          else {
            p.resolve(row.body_hash === p.entry.attempt.bodyHash ? { kind: "stored", row } : { kind: "conflict" });
            done.push(p);
          }
        }
        void forgetTxns(this.stores.redis, this.options.prefix, done.map(txnOf)).catch(() => undefined);
      },
      (error: unknown) => {
        // Proved not stored (the caller answers 503, "nothing was accepted"): their registrations
        // go, so that a GET says unknown_txn and another body is free. An unknown outcome keeps them.
        if (!(error instanceof OutcomeUnknownError))
          void forgetTxns(this.stores.redis, this.options.prefix, toStore.map(txnOf)).catch(() => undefined);
        for (const p of toStore) p.reject(error);
      },
    );
  }

  /**
   * Repeats (Redis holds this body) and conflicts (Redis holds another), answered from Postgres
   * when it has the txn's decision: the same body gets it, another body 409. Without a stored
   * decision a conflict is 409 (the first body is in flight) and a repeat is stored or queued
   * again (the worker answers it from the first copy's decision).
   */
  private async lookUp(ps: Pending[], conflicts: ReadonlySet<Pending>): Promise<void> {
    if (ps.length === 0) return;
    let rows: AttemptRow[];
    try {
      rows = await findAttempts(this.stores.db, ps.map(txnOf));
    } catch (error) {
      for (const p of ps) p.reject(error);
      return;
    }
    const byKey = new Map(rows.map((r) => [attemptKey(r.acquirer_id, r.txn_id), r]));
    const unstored: Pending[] = [];
    for (const p of ps) {
      const row = byKey.get(keyOf(p.entry));
      if (row) p.resolve(row.body_hash === p.entry.attempt.bodyHash ? { kind: "stored", row } : { kind: "conflict" });
      else if (conflicts.has(p)) p.resolve({ kind: "conflict" });
      else if (p.entry.immediate) unstored.push(p);
      else this.submit(p.entry, true).then(p.resolve, p.reject);
    }
    this.store(unstored);
  }
}

/** How often a job whose add may have landed is sent again (same id) while settling. */
const SETTLE_POLL_MS = 100;

class AdmitTimeout extends Error {
  override readonly name = "AdmitTimeout";
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AdmitTimeout(`Redis did not admit the batch within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function byPartition(ps: readonly Pending[]): Map<number, Pending[]> {
  const groups = new Map<number, Pending[]>();
  for (const p of ps) {
    const group = groups.get(p.entry.attempt.partition);
    if (group) group.push(p);
    else groups.set(p.entry.attempt.partition, [p]);
  }
  return groups;
}

function modeOf(p: Pending): AdmitMode {
  if (p.entry.immediate) return "immediate";
  return p.requeue ? "requeue" : "queue";
}
