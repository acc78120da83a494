import { Worker, type Job } from "bullmq";
import { decisionBody } from "@quanta/contract";
import type { QueuedAttempt } from "@quanta/domain";
import {
  CampaignCache,
  FencedOutError,
  decideBatchTx,
  refillShareTx,
  rowDecision,
  withRetry,
  attemptKey,
  type BatchResult,
  type Database,
} from "@quanta/db";
import {
  WORKER_LOCK_DURATION_MS,
  WORKER_STALLED_INTERVAL_MS,
  ATTEMPTS_PER_JOB_MAX,
  attemptSchema,
  batchJobSchema,
  keys,
  queueName,
  type BatchJob,
  type QuantaRedis,
} from "@quanta/queue";
import { batchSize, decisionLatency, decisions, poisonedAttempts, refills, txnDuration, txnRetries, type Logger } from "@quanta/telemetry";
import type { Kysely } from "kysely";
import type pg from "pg";

/**
 * Drains one partition's queue while this process owns it.
 *
 * BullMQ hands jobs to the processor up to `jobsMax` at a time; the processor
 * only parks each job and a single loop turns everything parked into one
 * Postgres transaction (group commit), in the order the jobs were taken.
 * Only one flush runs at a time, so a partition's attempts are decided one
 * after another and never concurrently.
 *
 * States: running -> closing (no new jobs; parked ones finish) -> closed;
 * running -> fenced (another process took the partition: parked jobs fail
 * back to BullMQ, which hands them to the new owner).
 */
export interface DrainOptions {
  prefix: string;
  partition: number;
  epoch: number;
  partitionCount: number;
  jobsMax: number;
  batchMax: number;
  maxStalledCount: number;
  onFenced: (partition: number) => void;
}

/** The one failure not worth retrying: a job with no decidable attempt (see park). */
export const UNDECIDABLE = "holds no decidable attempt";

interface Parked {
  job: Job<BatchJob>;
  replyTo: string;
  attempts: QueuedAttempt[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class PartitionDrain {
  private readonly worker: Worker<BatchJob>;
  private parked: Parked[] = [];
  private flushing = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly pool: pg.Pool,
    private readonly redis: QuantaRedis,
    private readonly campaigns: CampaignCache,
    private readonly log: Logger,
    private readonly options: DrainOptions,
  ) {
    this.worker = new Worker<BatchJob>(queueName(options.partition), (job) => this.park(job), {
      connection: redis,
      prefix: options.prefix,
      concurrency: options.jobsMax,
      lockDuration: WORKER_LOCK_DURATION_MS,
      stalledInterval: WORKER_STALLED_INTERVAL_MS,
      maxStalledCount: options.maxStalledCount,
      drainDelay: 1,
      skipVersionCheck: true,
      autorun: true,
    });
    this.worker.on("error", (error) => this.log.warn({ err: error, partition: options.partition }, "queue worker error"));
  }

  get partition(): number {
    return this.options.partition;
  }

  async close(): Promise<void> {
    await this.worker.close();
  }

  private park(job: Job<BatchJob>): Promise<void> {
    // Attempts are checked one by one: a poisoned record (which our ingress never writes, but a
    // corrupted or hand-made job might hold) is set aside and the rest of the job is decided.
    const parsed = batchJobSchema.shape.replyTo.safeParse(job.data?.replyTo);
    const raw: unknown[] = Array.isArray(job.data?.attempts) ? job.data.attempts : [];
    const attempts: QueuedAttempt[] = [];
    if (raw.length > ATTEMPTS_PER_JOB_MAX) {
      // Past the bound nothing is read: counted and logged as poisoned, never dropped silently.
      poisonedAttempts.inc(raw.length - ATTEMPTS_PER_JOB_MAX);
      this.log.error({ jobId: job.id, partition: this.options.partition, records: raw.length }, "queue job over the attempts bound: the excess is set aside");
    }
    for (const candidate of raw.slice(0, ATTEMPTS_PER_JOB_MAX)) {
      const attempt = attemptSchema.safeParse(candidate);
      if (attempt.success && attempt.data.partition === this.options.partition) attempts.push(attempt.data);
      else {
        poisonedAttempts.inc();
        this.log.error(
          { jobId: job.id, partition: this.options.partition, issues: attempt.success ? ["queued to another partition"] : attempt.error.issues.slice(0, 3) },
          "poisoned attempt in a queue job: set aside, the rest of the job is decided",
        );
      }
    }
    if (attempts.length === 0) {
      return Promise.reject(new Error(`job ${job.id} ${UNDECIDABLE} (${raw.length} records); kept failed for an operator`));
    }
    if (!parsed.success) this.log.warn({ jobId: job.id }, "queue job without a reply channel: decisions are stored, nobody is told");
    return new Promise((resolve, reject) => {
      this.parked.push({ job, replyTo: parsed.success ? parsed.data : "", attempts, resolve, reject });
      if (!this.flushing) setImmediate(() => void this.flushLoop());
    });
  }

  private async flushLoop(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.parked.length > 0) {
        const take: Parked[] = [];
        let size = 0;
        while (this.parked.length > 0 && (take.length === 0 || size + this.parked[0]!.attempts.length <= this.options.batchMax)) {
          const next = this.parked.shift()!;
          take.push(next);
          size += next.attempts.length;
        }
        try {
          await this.decide(take);
          for (const p of take) p.resolve();
        } catch (error) {
          for (const p of take) p.reject(error);
          if (error instanceof FencedOutError) {
            for (const p of this.parked.splice(0)) p.reject(error);
            this.options.onFenced(this.options.partition);
            return;
          }
          this.log.error({ err: error, partition: this.options.partition }, "batch failed; BullMQ will retry its jobs");
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async decide(parked: Parked[]): Promise<void> {
    const { partition, epoch } = this.options;
    const replyTo = new Map<string, string>();
    let todo: QueuedAttempt[] = [];
    for (const p of parked) {
      for (const a of p.attempts) {
        todo.push(a);
        replyTo.set(attemptKey(a.acquirerId, a.payment.txnId), p.replyTo);
      }
    }
    batchSize.observe(todo.length);
    await this.ensureCampaigns(todo);

    const results: BatchResult[] = [];
    const retry = {
      attemptsMax: 8,
      baseDelayMs: 10,
      delayMaxMs: 2_000,
      onRetry: (cls: string) => txnRetries.inc({ code: cls }),
    };
    for (let round = 0; todo.length > 0; round++) {
      // Each round either decides everything left or makes a refill; a tier can be refilled
      // only until it is marked empty, so rounds are bounded by stock movements.
      const started = performance.now();
      const outcome = await withRetry(() => decideBatchTx(this.pool, partition, epoch, todo, this.campaigns.byId()), retry);
      txnDuration.observe({ kind: "batch" }, (performance.now() - started) / 1000);
      results.push(...outcome.results);
      if (!outcome.refill) break;
      const refillStarted = performance.now();
      const { campaignId, tierId } = outcome.refill;
      const need = outcome.rest.filter((a) => a.request.campaignId === campaignId && a.request.tierIds.includes(tierId)).length;
      const refilled = await withRetry(
        () => refillShareTx(this.db, partition, this.options.partitionCount, campaignId, tierId, need),
        retry,
      );
      txnDuration.observe({ kind: "refill" }, (performance.now() - refillStarted) / 1000);
      refills.inc({ result: refilled });
      todo = outcome.rest;
      if (round > 10_000) throw new Error(`partition ${partition}: refill loop did not converge`);
    }

    await this.publish(results, replyTo);
  }

  private async ensureCampaigns(attempts: readonly QueuedAttempt[]): Promise<void> {
    const known = this.campaigns.byId();
    if (attempts.every((a) => known.has(a.request.campaignId))) return;
    await this.campaigns.refresh();
  }

  private async publish(results: readonly BatchResult[], replyTo: ReadonlyMap<string, string>): Promise<void> {
    const byChannel = new Map<string, [string, unknown][]>();
    const nowMs = Date.now();
    for (const r of results) {
      const key = attemptKey(r.attempt.acquirerId, r.attempt.payment.txnId);
      const target = replyTo.get(key);
      if (r.kind === "decided" && r.fresh) {
        const d = rowDecision(r.row);
        decisions.inc({ outcome: d.status, reason: d.status === "rejected" ? d.reason : "", tier: d.status === "granted" ? d.tierId : "" });
        decisionLatency.observe(Math.max(0, nowMs - r.attempt.receivedAtMs) / 1000);
      }
      if (!target) continue;
      const body = r.kind === "decided" ? decisionBody(r.row.txn_id, rowDecision(r.row)) : null;
      const list = byChannel.get(target) ?? [];
      list.push([key, body]);
      byChannel.set(target, list);
    }
    // One round trip: every ingress's answers and the backlog room these attempts held.
    // Best effort: a waiter that misses its answer says 202 and the decision is in Postgres;
    // a lost release is taken back by the idle-time backlog reset.
    const pipeline = this.redis.pipeline();
    for (const [target, answers] of byChannel) pipeline.publish(keys.decisions(this.options.prefix, target), JSON.stringify({ answers }));
    pipeline.decrby(keys.backlog(this.options.prefix), results.length);
    await pipeline.exec().catch(() => undefined);
  }
}
