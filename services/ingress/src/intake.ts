import type { QueuedAttempt } from "@quanta/domain";
import { OutcomeUnknownError, attemptKey, findAttempts, type AttemptRow, type ImmediateRecord } from "@quanta/db";
import {
  admitBatch,
  forgetTxns,
  jobOptions,
  keys,
  releaseBacklog,
  waitKey,
  type AdmitCode,
  type BatchJob,
} from "@quanta/queue";
import { intakeAttempts, intakeBatchSize, intakeJobs } from "@quanta/telemetry";
import { BoundExceeded, withBound } from "./bounded-wait.js";
import { addJobSettled, confirmReplicated } from "./job-add.js";
import type { IntakeEntry, IntakeOptions, IntakeResult, IntakeStores } from "./intake-types.js";
import { answerFromRow, byPartition, keyOf, modeOf, sortAdmitted, txnOf, type Pending } from "./pending-attempt.js";

export type * from "./intake-types.js";

/**
 * What the ingress does with an attempt once its body is known: admit it, then queue it for the
 * worker that owns its partition, or store the decision it made itself.
 *
 * Attempts that arrive together travel as one batch: admission (admitBatch, docs/decisions/0010)
 * registers the first body hash of every txn (another body is 409 even before the first is
 * decided or stored) and reserves backlog room, per partition, for what will be queued (past the
 * partition's share of QUANTA_BACKLOG_MAX: 503, nothing accepted, unless the txn's decision is
 * stored: that answers). Then, for the batch: one
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
      codes = (await withBound(admission, this.options.admitTimeoutMs, "Redis did not admit the batch")).codes;
    } catch (error) {
      if (!(error instanceof BoundExceeded)) {
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

    const { toQueue, toStore, toLookUp, toRefuse, conflicts } = sortAdmitted(batch);
    this.store(toStore);
    await Promise.all([
      this.refuse(toRefuse),
      ...[...byPartition(toQueue)].map(([partition, group]) => this.enqueueNew(partition, group)),
    ]);
    // After the adds: a look-up that queues a repeat again joins the next batch.
    await this.lookUp(toLookUp, conflicts);
  }

  /**
   * Attempts of a full partition: nothing is accepted (503), unless Postgres holds the txn's
   * decision, which answers whatever Redis says: a resend of a decided txn gets its decision (I4),
   * another body 409, even while the backlog is at its bound. One read per batch, and only for the
   * refused; when it fails or outlasts admitTimeoutMs (a frozen Postgres must not hold a 503 back)
   * the answer is 503 all the same: nothing was accepted either way.
   */
  private async refuse(ps: readonly Pending[]): Promise<void> {
    if (ps.length === 0) return;
    const stored = await withBound(this.storedRows(ps), this.options.admitTimeoutMs, "Postgres did not answer").catch(
      () => new Map<string, AttemptRow>(),
    );
    for (const p of ps) {
      const row = stored.get(keyOf(p.entry));
      p.resolve(row ? answerFromRow(p, row) : { kind: "overloaded" });
    }
  }

  /** The stored decisions of these attempts' txns, by attemptKey: one read. */
  private async storedRows(ps: readonly Pending[]): Promise<Map<string, AttemptRow>> {
    const rows = await findAttempts(this.stores.db, ps.map(txnOf));
    return new Map(rows.map((r) => [attemptKey(r.acquirer_id, r.txn_id), r]));
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
      await addJobSettled(queue, job, options, this.options.settleMs);
      await confirmReplicated(queue, job, options, {
        key: keys.bull(this.options.prefix, partition, "wait"),
        wanted: this.options.redisWaitReplicas,
        timeoutMs: this.options.redisWaitTimeoutMs,
        ...(this.stores.replication ? { replication: this.stores.replication } : {}),
      });
    } catch (error) {
      for (const w of waits) w.cancel();
      throw error;
    }
    intakeJobs.inc();
    intakeAttempts.inc(toQueue.length);
    toQueue.forEach((p, i) => p.resolve({ kind: "queued", decision: waits[i]!.result }));
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
            p.resolve(answerFromRow(p, row));
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
    let stored: Map<string, AttemptRow>;
    try {
      stored = await this.storedRows(ps);
    } catch (error) {
      for (const p of ps) p.reject(error);
      return;
    }
    const unstored: Pending[] = [];
    for (const p of ps) {
      const row = stored.get(keyOf(p.entry));
      if (row) p.resolve(answerFromRow(p, row));
      else if (conflicts.has(p)) p.resolve({ kind: "conflict" });
      else if (p.entry.immediate) unstored.push(p);
      else this.submit(p.entry, true).then(p.resolve, p.reject);
    }
    this.store(unstored);
  }
}
