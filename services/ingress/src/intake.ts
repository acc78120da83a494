import type { Queue } from "bullmq";
import type pg from "pg";
import type { Kysely } from "kysely";
import type { Decision, QueuedAttempt } from "@quanta/domain";
import {
  attemptKey,
  findAttempts,
  recordImmediateBatch,
  type AttemptRow,
  type DecisionRow,
  type BatchResult,
  type Database,
  type ImmediateOutcome,
  type ImmediateRecord,
} from "@quanta/db";
import { admitBatch, forgetTxns, jobOptions, promoteToQueued, releaseBacklog, type AdmitMode, type BatchJob, type QuantaRedis } from "@quanta/queue";
import { intakeAttempts, intakeBatchSize, intakeJobs, intakeLocal } from "@quanta/telemetry";
import type { WaitResult } from "./decision-waiter.js";

/**
 * Group commit of everything the ingress writes. Attempts that arrive
 * together travel as one batch: one Redis script registers every txn's first
 * sighting and reserves backlog room for what will be queued
 * (intake-admit.lua), then, at the same time, the decisions that need no
 * stock are stored (in the owner's group transaction when this process owns
 * partitions, `storeImmediate`, else one statement), the attempts that need
 * stock in a partition this process owns go to its batch transaction
 * (`localDrain`: decided at once, no queue job), and the others into one
 * BullMQ job per partition for its owner.
 *
 * When a batch leaves: after flushMs, but while a batch is still in flight
 * the next one keeps filling, so batches grow with the load
 * instead of the number of round trips; a full batch (batchMax) leaves at
 * once. At most pendingMax attempts are held (buffered or in flight); past
 * that, submit answers overloaded without touching Redis.
 *
 * States of an attempt: buffered -> admitting -> [local: deciding ->]
 * queued (wait for the owner's decision; a local attempt the partition's
 * drain could not decide ends here too) | stored (decision known now) | stale (a sold_out whose tier got
 * stock back: the caller queues it again as a repeat) | conflict (another
 * body has this txnId) | overloaded (nothing was accepted) | failed (the error
 * reaches the caller; nothing it owns is left registered or reserved).
 * A repeat of a txn (same body) is answered from its stored decision; when
 * there is none yet it is queued again, and the worker answers it from the
 * first copy's decision.
 * Trade-off: up to flushMs (plus one batch in flight) of added latency for a
 * few round trips per batch instead of several per attempt.
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
  /** This batch registered the txn (its first sighting): forget it once the decision is stored. */
  first?: boolean;
  resolve: (r: IntakeResult) => void;
  reject: (e: unknown) => void;
}

export interface IntakeOptions {
  prefix: string;
  replyTo: string;
  batchMax: number;
  flushMs: number;
  backlogMax: number;
  retentionS: number;
  txnRegistryTtlS: number;
  /** Registry TTL of a txn decided at once (its key is deleted when the decision is stored). */
  txnInFlightTtlS: number;
  /** How long a queued attempt's caller waits for the decision before answering 202. */
  decisionWaitMs: number;
  admitTimeoutMs: number;
  /** Attempts held at once, buffered or in flight (a stalled Redis must not grow memory without bound). */
  pendingMax: number;
}

/** What the intake needs of a partition drain this process owns (see @quanta/owner). */
export interface LocalDrain {
  readonly open: boolean;
  decideLocal(attempts: readonly QueuedAttempt[]): Promise<BatchResult[]>;
}

export interface IntakeStores {
  redis: QuantaRedis;
  queues: readonly Queue[];
  pool: pg.Pool;
  db: Kysely<Database>;
  /** The open drain of a partition this process owns, if any. */
  localDrain?: (partition: number) => LocalDrain | undefined;
  /** Where queued attempts wait for their decision. */
  waits: DecisionWaits;
  /** Stores the ingress's own decisions in the owner's group transaction (otherwise one statement of their own). */
  storeImmediate?: (records: readonly ImmediateRecord[]) => Promise<ImmediateOutcome>;
}

const keyOf = (e: IntakeEntry) => attemptKey(e.attempt.acquirerId, e.attempt.payment.txnId);

export class Intake {
  // One buffer for every partition: a batch is one admission script, one statement (or one share
  // of the owner's group transaction) for the ingress's own decisions, whatever partitions it spans.
  private buffer: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Batches in flight (a full batch can leave while another is in flight). */
  private inFlight = 0;
  private pending = 0;

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
      else if (!this.timer) this.timer = setTimeout(() => this.flushWhenFree(), this.options.flushMs);
    }).finally(settled);
  }

  private flushWhenFree(): void {
    this.timer = undefined;
    // The batch in flight calls back when it is done; the buffer keeps filling until then.
    if (this.inFlight === 0) this.flush();
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer.splice(0, this.options.batchMax);
    if (batch.length === 0) return;
    this.inFlight++;
    intakeBatchSize.observe(batch.length);
    void this.admit(batch).finally(() => {
      this.inFlight--;
      if (this.inFlight === 0 && this.buffer.length > 0 && !this.timer) this.flush();
    });
  }

  /** The open drain of a partition owned here, if any. */
  private drainOf(partition: number): LocalDrain | undefined {
    const candidate = this.stores.localDrain?.(partition);
    return candidate?.open ? candidate : undefined;
  }

  private async admit(batch: Pending[]): Promise<void> {
    const { prefix, backlogMax, txnRegistryTtlS } = this.options;
    const drains = new Map<number, LocalDrain | undefined>();
    for (const p of batch) {
      const partition = p.entry.attempt.partition;
      if (!drains.has(partition)) drains.set(partition, this.drainOf(partition));
    }
    const local = (p: Pending) => drains.get(p.entry.attempt.partition) !== undefined;
    let codes;
    try {
      // If the script runs after the timeout, it only registers first sightings (a retry of the
      // txn is then queued as a repeat) and reserves room the idle-time reset takes back: nothing
      // is queued or stored for an attempt answered 503.
      codes = (
        await withTimeout(admitBatch(
          this.stores.redis,
          prefix,
          batch.map((p) => ({
            acquirerId: p.entry.attempt.acquirerId,
            txnId: p.entry.attempt.payment.txnId,
            bodyHash: p.entry.attempt.bodyHash,
            mode: modeOf(p, local(p)),
          })),
          backlogMax,
          txnRegistryTtlS,
          this.options.txnInFlightTtlS,
        ), this.options.admitTimeoutMs)
      ).codes;
    } catch (error) {
      if (error instanceof AdmitTimeout) for (const p of batch) p.resolve({ kind: "unavailable" });
      else for (const p of batch) p.reject(error);
      return;
    }

    const toQueue: Pending[] = [];
    const toStore: Pending[] = [];
    const toDecide: Pending[] = [];
    const repeats: Pending[] = [];
    batch.forEach((p, i) => {
      p.first = codes[i] === "first";
      switch (codes[i]) {
        case "conflict":
          return p.resolve({ kind: "conflict" });
        case "overloaded":
          return p.resolve({ kind: "overloaded" });
        case "repeat":
          // The owner's transaction answers a repeat from its stored decision, or decides it if none.
          if (p.entry.immediate) return void (this.stores.storeImmediate ? toStore : repeats).push(p);
          return void (local(p) ? toDecide : repeats).push(p);
        default:
          return void (p.entry.immediate ? toStore : local(p) ? toDecide : toQueue).push(p);
      }
    });
    await Promise.all([
      this.store(toStore),
      ...[...byPartition(toQueue)].map(([partition, group]) => this.enqueueNew(partition, group)),
      this.answerRepeats(repeats),
      ...[...byPartition(toDecide)].map(([partition, group]) => this.decideHere(partition, drains.get(partition)!, group)),
    ]);
  }

  /** Queues first sightings; when the job cannot be added, their registration and room are taken back. */
  private async enqueueNew(partition: number, toQueue: Pending[]): Promise<void> {
    const { prefix } = this.options;
    const firstSightings = (ps: Pending[]) => ps.filter((p) => !p.requeue).map((p) => p.entry.attempt);
    await this.enqueue(partition, toQueue).catch(async (error) => {
      await releaseBacklog(this.stores.redis, prefix, toQueue.length).catch(() => undefined);
      // A retry of these txns must be free to be accepted later.
      await forgetTxns(this.stores.redis, prefix, firstSightings(toQueue).map((a) => ({ acquirerId: a.acquirerId, txnId: a.payment.txnId }))).catch(
        () => undefined,
      );
      for (const p of toQueue) p.reject(error);
    });
  }

  /**
   * Decides attempts in this process's batch transaction of their partition. When the drain cannot
   * (closed, fenced, Postgres down past the retries, in which case a commit may even have landed),
   * they are queued like any other: the owner answers from a stored decision or decides them.
   */
  private async decideHere(partition: number, drain: LocalDrain, toDecide: Pending[]): Promise<void> {
    if (toDecide.length === 0) return;
    let results: BatchResult[];
    try {
      results = await drain.decideLocal(toDecide.map((p) => p.entry.attempt as QueuedAttempt));
    } catch {
      intakeLocal.inc({ result: "queued" }, toDecide.length);
      try {
        const firstSightings = toDecide.filter((p) => p.first).map((p) => txnOf(p));
        await promoteToQueued(this.stores.redis, this.options.prefix, firstSightings, toDecide.length, this.options.txnRegistryTtlS);
      } catch (error) {
        for (const p of toDecide) p.reject(error);
        return;
      }
      await this.enqueue(partition, toDecide).catch(async (error) => {
        await releaseBacklog(this.stores.redis, this.options.prefix, toDecide.length).catch(() => undefined);
        for (const p of toDecide) p.reject(error);
      });
      return;
    }
    intakeLocal.inc({ result: "decided" }, toDecide.length);
    results.forEach((r, i) => {
      const p = toDecide[i]!;
      if (r.kind === "decided" && r.row.body_hash === p.entry.attempt.bodyHash) p.resolve({ kind: "stored", row: r.row });
      else p.resolve({ kind: "conflict" });
    });
    this.forgetStored(toDecide);
  }

  /**
   * Stored decisions answer for their txns from now on (a later copy is matched against the row):
   * their registrations go, so Redis holds only what is in flight or queued. Best effort, after the
   * answers; a key left behind expires after txnInFlightTtlS.
   */
  private forgetStored(ps: readonly Pending[]): void {
    const txns = ps.filter((p) => p.first).map((p) => txnOf(p));
    if (txns.length > 0) void forgetTxns(this.stores.redis, this.options.prefix, txns).catch(() => undefined);
  }

  /**
   * One job for the partition's owner. The waits are registered before the job is added: its
   * decision can be published before this process reads the reply to the add. Only queued
   * attempts wait this way; what is decided here needs no waiter.
   */
  private async enqueue(partition: number, toQueue: Pending[]): Promise<void> {
    if (toQueue.length === 0) return;
    const job: BatchJob = { replyTo: this.options.replyTo, attempts: toQueue.map((p) => p.entry.attempt as QueuedAttempt) };
    const waits = toQueue.map((p) => this.stores.waits.wait(keyOf(p.entry), this.options.decisionWaitMs));
    try {
      await this.stores.queues[partition]!.add("batch", job, jobOptions(this.options.retentionS));
    } catch (error) {
      for (const w of waits) w.cancel();
      throw error;
    }
    intakeJobs.inc();
    intakeAttempts.inc(toQueue.length);
    toQueue.forEach((p, i) => p.resolve({ kind: "queued", decision: waits[i]!.result }));
  }

  /** Stores immediate decisions in one statement; a txn stored earlier answers with its own row. */
  private async store(toStore: Pending[]): Promise<void> {
    if (toStore.length === 0) return;
    try {
      const records: ImmediateRecord[] = toStore.map((p) => ({
        record: { ...p.entry.attempt, decision: p.entry.immediate!.decision, decidedBy: "ingress" },
        checkHolder: p.entry.immediate!.checkHolder,
        ...(p.entry.immediate!.soldOutTiers ? { soldOutTiers: p.entry.immediate!.soldOutTiers } : {}),
      }));
      const { stored, stale } = this.stores.storeImmediate
        ? await this.stores.storeImmediate(records)
        : await recordImmediateBatch(this.stores.pool, this.stores.db, records);
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
      this.forgetStored(done);
    } catch (error) {
      for (const p of toStore) p.reject(error);
    }
  }

  /** Repeats (same body): the stored decision when there is one; otherwise stored or queued again. */
  private async answerRepeats(repeats: Pending[]): Promise<void> {
    if (repeats.length === 0) return;
    let rows: AttemptRow[];
    try {
      rows = await findAttempts(this.stores.db, repeats.map((p) => ({ acquirerId: p.entry.attempt.acquirerId, txnId: p.entry.attempt.payment.txnId })));
    } catch (error) {
      for (const p of repeats) p.reject(error);
      return;
    }
    const byKey = new Map(rows.map((r) => [attemptKey(r.acquirer_id, r.txn_id), r]));
    const unstored: Pending[] = [];
    for (const p of repeats) {
      const row = byKey.get(keyOf(p.entry));
      if (row) p.resolve(row.body_hash === p.entry.attempt.bodyHash ? { kind: "stored", row } : { kind: "conflict" });
      else if (p.entry.immediate) unstored.push(p);
      else this.submit(p.entry, true).then(p.resolve, p.reject);
    }
    await this.store(unstored);
  }
}

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

const txnOf = (p: Pending) => ({ acquirerId: p.entry.attempt.acquirerId, txnId: p.entry.attempt.payment.txnId });

function byPartition(ps: readonly Pending[]): Map<number, Pending[]> {
  const groups = new Map<number, Pending[]>();
  for (const p of ps) {
    const group = groups.get(p.entry.attempt.partition);
    if (group) group.push(p);
    else groups.set(p.entry.attempt.partition, [p]);
  }
  return groups;
}

function modeOf(p: Pending, local: boolean): AdmitMode {
  if (p.entry.immediate) return "immediate";
  if (local) return "local";
  return p.requeue ? "requeue" : "queue";
}
