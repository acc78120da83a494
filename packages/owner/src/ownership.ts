import { Queue } from "bullmq";
import { claimPartition, type CampaignCache, type Database, type ImmediateOutcome, type ImmediateRecord } from "@quanta/db";
import { keys, queueName, resetBacklogIfIdle, type QuantaRedis } from "@quanta/queue";
import { partitionChanges, partitionsOwned, requeuedJobs, type Logger } from "@quanta/telemetry";
import type { Kysely } from "kysely";
import type pg from "pg";
import { BatchFlusher } from "./batch-flusher.js";
import { PartitionDrain, UNDECIDABLE } from "./partition-drain.js";

/**
 * Which process decides which partition.
 *
 * Two roles. Ingresses are "primary" owners: they decide the attempts they
 * receive for their partitions in their own batch transactions, without a
 * queue hop. Workers are "standby" owners: they take partitions only while no
 * primary is alive (an ingress down, frozen or not deployed), and drain the
 * queue then. Either kind also drains the queue of what it owns.
 *
 * Every tick (leaseMs / 5) an owner: records its heartbeat (primaries also in
 * a set of their own); renews each lease it holds (a lease it failed to renew
 * is dropped at once); computes its fair share, ceil(partitions / live
 * owners of its role), or 0 for a standby while any primary lives; releases
 * partitions above that share (after their in-flight batches finish) and
 * takes free ones below it.
 * Taking a partition bumps its Postgres epoch (fencing), so at any moment at
 * most one process can commit for a partition even if a paused process has
 * not yet noticed that its lease expired.
 *
 * A dead owner's leases expire after leaseMs; the others take its
 * partitions on their next tick, and BullMQ returns its in-flight jobs to the
 * queue once their locks expire. No operator action is needed. While an
 * ingress has no partition (at start, during a move) it queues, as before.
 * Trade-off: one primary decides every attempt it receives at once, but with
 * several ingresses behind a load balancer, the attempts an ingress receives
 * for another's partitions still take the queue.
 */
export type OwnerRole = "primary" | "standby";

export interface OwnershipOptions {
  workerId: string;
  role: OwnerRole;
  prefix: string;
  partitionCount: number;
  leaseMs: number;
  jobsMax: number;
  batchMax: number;
  /** Group commit window of the process's batch transactions (see BatchFlusher). */
  roundGapMs: number;
  maxStalledCount: number;
}

export class Ownership {
  private readonly drains = new Map<number, PartitionDrain>();
  private readonly releasing = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;
  private lastHousekeepingMs = 0;
  private readonly flusher: BatchFlusher;

  constructor(
    private readonly db: Kysely<Database>,
    pool: pg.Pool,
    private readonly redis: QuantaRedis,
    campaigns: CampaignCache,
    private readonly log: Logger,
    private readonly options: OwnershipOptions,
  ) {
    this.flusher = new BatchFlusher(db, pool, redis, campaigns, log, {
      prefix: options.prefix,
      partitionCount: options.partitionCount,
      batchMax: options.batchMax,
      roundGapMs: options.roundGapMs,
    });
  }

  owned(): number[] {
    return [...this.drains.keys()].sort((a, b) => a - b);
  }

  /** Stores decisions that need no stock in this process's next group transaction. */
  storeImmediate(records: readonly ImmediateRecord[]): Promise<ImmediateOutcome> {
    return this.flusher.storeImmediate(records);
  }

  /** The drain of a partition held here and not being handed back, for local decisions. */
  drainFor(partition: number): PartitionDrain | undefined {
    if (this.releasing.has(partition)) return undefined;
    return this.drains.get(partition);
  }

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(200, Math.floor(this.options.leaseMs / 5)));
  }

  /** Graceful stop: finish in-flight batches, then hand every partition back. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.ticking) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(this.owned().map((p) => this.release(p)));
    await this.redis.zrem(keys.workers(this.options.prefix), this.options.workerId).catch(() => 0);
    await this.redis.zrem(keys.primaries(this.options.prefix), this.options.workerId).catch(() => 0);
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const { prefix, workerId, leaseMs, partitionCount } = this.options;
      const nowMs = Date.now();
      const primary = this.options.role === "primary";
      const beat = this.redis.multi();
      for (const set of primary ? [keys.workers(prefix), keys.primaries(prefix)] : [keys.workers(prefix)]) {
        beat.zadd(set, nowMs, workerId).zremrangebyscore(set, "-inf", nowMs - leaseMs);
      }
      await beat.exec();
      const livePrimaries = await this.redis.zcount(keys.primaries(prefix), nowMs - leaseMs, "+inf");
      const live = Math.max(1, await this.redis.zcount(keys.workers(prefix), nowMs - leaseMs, "+inf"));
      const share = primary ? Math.ceil(partitionCount / Math.max(1, livePrimaries)) : livePrimaries > 0 ? 0 : Math.ceil(partitionCount / live);

      for (const p of this.owned()) {
        if ((await this.redis.leaseRenew(keys.lease(prefix, p), workerId, leaseMs)) !== 1) await this.lose(p, "lease expired");
      }
      const mine = this.owned().filter((p) => !this.releasing.has(p));
      for (const p of mine.slice(share)) void this.release(p);
      if (mine.length < share) await this.acquire(share - mine.length);
      partitionsOwned.set(this.drains.size);

      if (nowMs - this.lastHousekeepingMs > 5_000) {
        this.lastHousekeepingMs = nowMs;
        await this.housekeeping();
      }
    } catch (error) {
      this.log.warn({ err: error }, "ownership tick failed; retrying next tick");
    } finally {
      this.ticking = false;
    }
  }

  private async acquire(wanted: number): Promise<void> {
    const { prefix, workerId, leaseMs, partitionCount } = this.options;
    // Start from a worker-specific offset so that workers starting together do not all race for partition 0.
    const offset = Number.parseInt(workerId.slice(-4), 16) % partitionCount || 0;
    for (let i = 0; i < partitionCount && wanted > 0; i++) {
      const p = (offset + i) % partitionCount;
      if (this.drains.has(p)) continue;
      const ok = await this.redis.set(keys.lease(prefix, p), workerId, "PX", leaseMs, "NX");
      if (ok !== "OK") continue;
      try {
        const epoch = await claimPartition(this.db, p, workerId);
        this.drains.set(
          p,
          new PartitionDrain(this.redis, this.flusher, this.log, {
            prefix,
            partition: p,
            epoch,
            jobsMax: this.options.jobsMax,
            maxStalledCount: this.options.maxStalledCount,
            onFenced: (q, drain) => void this.lose(q, "fenced by a newer owner", drain),
          }),
        );
        partitionChanges.inc({ change: "acquired" });
        this.log.info({ partition: p, epoch }, "partition acquired");
        wanted--;
      } catch (error) {
        await this.redis.leaseRelease(keys.lease(prefix, p), workerId).catch(() => 0);
        throw error;
      }
    }
  }

  private async release(p: number): Promise<void> {
    const drain = this.drains.get(p);
    if (!drain || this.releasing.has(p)) return;
    this.releasing.add(p);
    try {
      await drain.close();
    } finally {
      this.drains.delete(p);
      this.releasing.delete(p);
      await this.redis.leaseRelease(keys.lease(this.options.prefix, p), this.options.workerId).catch(() => 0);
      partitionChanges.inc({ change: "released" });
      partitionsOwned.set(this.drains.size);
      this.log.info({ partition: p }, "partition released");
    }
  }

  private async lose(p: number, why: string, only?: PartitionDrain): Promise<void> {
    const drain = this.drains.get(p);
    if (!drain || (only && drain !== only)) return;
    this.drains.delete(p);
    partitionChanges.inc({ change: "lost" });
    partitionsOwned.set(this.drains.size);
    this.log.warn({ partition: p, why }, "partition lost");
    // Do not wait for in-flight jobs: whatever they try to commit is fenced out.
    void drain.close().catch(() => undefined);
  }

  /**
   * Jobs BullMQ gave up on (stalled past QUANTA_WORKER_MAX_STALLED_COUNT, or out of retries while
   * Postgres was away) still owe their attempts a decision: put them back. Deciding again is
   * safe: attempts already decided are answered from their stored rows. A job with no decidable
   * attempt stays failed for an operator. Bounded per pass.
   */
  private async housekeeping(): Promise<void> {
    const { prefix, partitionCount } = this.options;
    await resetBacklogIfIdle(this.redis, prefix, partitionCount);
    for (const p of this.owned()) {
      const queue = new Queue(queueName(p), { connection: this.redis, prefix, skipVersionCheck: true });
      try {
        const failed = await queue.getFailed(0, 99);
        for (const job of failed) {
          if (job.failedReason?.includes(UNDECIDABLE)) continue;
          this.log.warn({ partition: p, jobId: job.id, reason: job.failedReason }, "re-queueing a failed job");
          await job.retry("failed").then(() => requeuedJobs.inc(), () => undefined);
        }
      } finally {
        await queue.close();
      }
    }
  }
}
