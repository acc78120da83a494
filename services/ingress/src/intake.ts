import type { Queue } from "bullmq";
import type { QueuedAttempt } from "@quanta/domain";
import { jobOptions, releaseBacklog, reserveBacklog, type BatchJob, type QuantaRedis } from "@quanta/queue";
import { intakeAttempts, intakeJobs } from "@quanta/telemetry";

/**
 * Group commit into the queue. Attempts for one partition that arrive within
 * flushMs of each other (at most batchMax) travel in one BullMQ job: one
 * reserve and one add per batch instead of per attempt.
 *
 * States of a batch: filling -> reserving (backlog bound) -> adding ->
 * queued (every attempt in it may now be acknowledged) | overloaded
 * (nothing added; callers answer 503) | failed (nothing added; the error
 * reaches each caller).
 * Trade-off: up to flushMs of added latency for far fewer Redis commands.
 */
export type IntakeResult = "queued" | "overloaded";

interface Pending {
  attempt: QueuedAttempt;
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
}

export class Intake {
  private readonly buffers = new Map<number, Pending[]>();
  private readonly timers = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly redis: QuantaRedis,
    private readonly queues: readonly Queue[],
    private readonly options: IntakeOptions,
  ) {}

  submit(attempt: QueuedAttempt): Promise<IntakeResult> {
    return new Promise((resolve, reject) => {
      const p = attempt.partition;
      const buffer = this.buffers.get(p) ?? [];
      buffer.push({ attempt, resolve, reject });
      this.buffers.set(p, buffer);
      if (buffer.length >= this.options.batchMax) this.flush(p);
      else if (!this.timers.has(p)) this.timers.set(p, setTimeout(() => this.flush(p), this.options.flushMs));
    });
  }

  private flush(partition: number): void {
    const timer = this.timers.get(partition);
    if (timer) clearTimeout(timer);
    this.timers.delete(partition);
    const batch = this.buffers.get(partition) ?? [];
    this.buffers.delete(partition);
    if (batch.length > 0) void this.add(partition, batch);
  }

  private async add(partition: number, batch: Pending[]): Promise<void> {
    const { prefix, backlogMax, replyTo, retentionS } = this.options;
    let reserved = false;
    try {
      if ((await reserveBacklog(this.redis, prefix, batch.length, backlogMax)) === undefined) {
        for (const p of batch) p.resolve("overloaded");
        return;
      }
      reserved = true;
      const job: BatchJob = { replyTo, attempts: batch.map((p) => p.attempt) };
      await this.queues[partition]!.add("batch", job, jobOptions(retentionS));
      intakeJobs.inc();
      intakeAttempts.inc(batch.length);
      for (const p of batch) p.resolve("queued");
    } catch (error) {
      if (reserved) await releaseBacklog(this.redis, prefix, batch.length).catch(() => undefined);
      for (const p of batch) p.reject(error);
    }
  }
}
