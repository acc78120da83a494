import { UnrecoverableError, Worker, type Job } from "bullmq";
import { invariant, type QueuedAttempt } from "@quanta/domain";
import {
  WORKER_LOCK_DURATION_MS,
  WORKER_STALLED_INTERVAL_MS,
  ATTEMPTS_PER_JOB_MAX,
  attemptSchema,
  batchJobSchema,
  queueName,
  queuePrefix,
  type BatchJob,
  type QuantaRedis,
} from "@quanta/queue";
import { poisonedAttempts, type Logger } from "@quanta/telemetry";
import type { BatchFlusher } from "./batch-flusher.js";

/**
 * Takes one partition's queue jobs while this process owns the partition.
 *
 * BullMQ hands jobs to the processor up to `jobsMax` at a time; each job's attempts are parked
 * with the process's one BatchFlusher, which decides every owned partition in one transaction per
 * round, so a partition's attempts are decided one round after another, never concurrently. A
 * job completes when all its attempts are decided; then the backlog room it took goes back.
 * States: running -> closing (no new jobs; parked ones finish) -> closed; running -> fenced
 * (another process took the partition: parked jobs fail back to BullMQ, which hands them to the
 * new owner, who answers what is already stored from its rows).
 */
export interface DrainOptions {
  prefix: string;
  partition: number;
  epoch: number;
  jobsMax: number;
  maxStalledCount: number;
  /** This drain was fenced: its owner drops it (and only it, not a newer drain of the partition). */
  onFenced: (partition: number, drain: PartitionDrain) => void;
  /** A job completed: the backlog room its attempts took at admission goes back. */
  onCompleted: (room: number) => void;
}

/** The one failure not worth retrying: a job with no decidable attempt (see park). */
export const UNDECIDABLE = "holds no decidable attempt";

export class PartitionDrain {
  private readonly worker: Worker<BatchJob>;

  constructor(
    redis: QuantaRedis,
    private readonly flusher: BatchFlusher,
    private readonly log: Logger,
    private readonly options: DrainOptions,
  ) {
    this.worker = new Worker<BatchJob>(queueName(options.partition), (job) => this.park(job), {
      connection: redis,
      prefix: queuePrefix(options.prefix, options.partition),
      concurrency: options.jobsMax,
      lockDuration: WORKER_LOCK_DURATION_MS,
      stalledInterval: WORKER_STALLED_INTERVAL_MS,
      maxStalledCount: options.maxStalledCount,
      drainDelay: 1,
      skipVersionCheck: true,
      autorun: true,
    });
    this.worker.on("error", (error) =>
      this.log.warn({ err: error, partition: options.partition }, "queue worker error"),
    );
    // Once per job, after BullMQ marked it completed: a job handed out again (stalled, fenced, a
    // round failed after some of its attempts were published) gives its room back only then.
    this.worker.on("completed", (job) => {
      const room = batchJobSchema.shape.room.safeParse(job.data?.room);
      if (room.success && room.data) this.options.onCompleted(room.data);
    });
  }

  get partition(): number {
    return this.options.partition;
  }

  /** Takes no new job, and returns once the jobs it holds are decided. */
  async close(): Promise<void> {
    await this.worker.close();
    while (this.flusher.busy(this.options.partition, this.options.epoch)) await new Promise((r) => setTimeout(r, 5));
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
      this.log.error(
        { jobId: job.id, partition: this.options.partition, records: raw.length },
        "queue job over the attempts bound: the excess is set aside",
      );
    }
    for (const candidate of raw.slice(0, ATTEMPTS_PER_JOB_MAX)) {
      const attempt = attemptSchema.safeParse(candidate);
      if (attempt.success && attempt.data.partition === this.options.partition) attempts.push(attempt.data);
      else {
        poisonedAttempts.inc();
        this.log.error(
          {
            jobId: job.id,
            partition: this.options.partition,
            issues: attempt.success ? ["queued to another partition"] : attempt.error.issues.slice(0, 3),
          },
          "poisoned attempt in a queue job: set aside, the rest of the job is decided",
        );
      }
    }
    if (attempts.length === 0) {
      // Unrecoverable: retrying cannot make it decidable, so it fails at once for an operator
      // instead of backing off through the job's attempts (docs/decisions/0014).
      return Promise.reject(
        new UnrecoverableError(`job ${job.id} ${UNDECIDABLE} (${raw.length} records); kept failed for an operator`),
      );
    }
    if (!parsed.success)
      this.log.warn({ jobId: job.id }, "queue job without a reply channel: decisions are stored, nobody is told");
    invariant(
      attempts.every((a) => a.partition === this.options.partition),
      "a job attempt of another partition",
    );
    return new Promise((resolve, reject) => {
      this.flusher.park({
        partition: this.options.partition,
        epoch: this.options.epoch,
        attempts,
        replyTo: parsed.success ? parsed.data : "",
        resolve: () => resolve(),
        reject,
        onFenced: () => this.options.onFenced(this.options.partition, this),
      });
    });
  }
}
