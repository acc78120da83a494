import { claimPartition, type CampaignCache, type Database } from "@quanta/db";
import { keys, partitionQueue, resetBacklogIfIdle, type QuantaRedis } from "@quanta/queue";
import { backlogResets, partitionChanges, partitionsOwned, requeuedJobs, type Logger } from "@quanta/telemetry";
import type { Kysely } from "kysely";
import type pg from "pg";
import { BatchFlusher } from "./batch-flusher.js";
import { PartitionDrain, UNDECIDABLE } from "./partition-drain.js";

/**
 * Which worker decides which partition.
 *
 * Every tick (leaseMs / 5) a worker: records its heartbeat; renews each lease it holds (a lease
 * it failed to renew is dropped at once); computes its fair share, ceil(partitions / live
 * workers); releases partitions above that share (after the jobs it holds are decided). Below its
 * share it takes free partitions, beside the ticks (a claim can wait on Postgres; renewals must
 * not), and tries again every acquirePollMs while still short, so a partition another worker hands
 * back (or whose lease expires) has a new owner within that long, not a tick later.
 * Taking a partition bumps its Postgres epoch (fencing), so at any moment at most one process can
 * commit for a partition even if a paused process has not yet noticed that its lease expired.
 *
 * A dead worker's leases expire after leaseMs; the others take its partitions, and BullMQ
 * returns its in-flight jobs to the queue once their locks expire. No operator action is needed.
 * Trade-off: a partition handed over waits for its jobs in flight to be decided and for one poll
 * of the taker (about acquirePollMs); its callbacks wait in the queue meanwhile.
 */
export interface OwnershipOptions {
  workerId: string;
  prefix: string;
  partitionCount: number;
  leaseMs: number;
  jobsMax: number;
  batchMax: number;
  /** Group commit window of the process's rounds (see BatchFlusher). */
  roundGapMs: number;
  maxStalledCount: number;
  /** Fault injection (QUANTA_FAULT_STOP_AFTER_READ_ROUND): SIGSTOP itself inside its Nth round; 0 never. */
  faultStopAfterReadRound?: number;
}

export class Ownership {
  private readonly drains = new Map<number, PartitionDrain>();
  private readonly releasing = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private acquiring = false;
  private stopped = false;
  private lastHousekeepingMs = 0;
  private share = 0;
  private poller: NodeJS.Timeout | undefined;
  private readonly flusher: BatchFlusher;

  constructor(
    private readonly db: Kysely<Database>,
    pool: pg.Pool,
    private readonly redis: QuantaRedis,
    campaigns: CampaignCache,
    private readonly log: Logger,
    private readonly options: OwnershipOptions,
  ) {
    this.flusher = new BatchFlusher(pool, redis, campaigns, log, {
      prefix: options.prefix,
      partitionCount: options.partitionCount,
      batchMax: options.batchMax,
      roundGapMs: options.roundGapMs,
      faultStopAfterReadRound: options.faultStopAfterReadRound ?? 0,
    });
  }

  owned(): number[] {
    return [...this.drains.keys()].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(200, Math.floor(this.options.leaseMs / 5)));
  }

  /** Graceful stop: finish in-flight batches, then hand every partition back. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.poller) clearTimeout(this.poller);
    while (this.ticking || this.acquiring) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(this.owned().map((p) => this.release(p)));
    await this.redis.zrem(keys.workers(this.options.prefix), this.options.workerId).catch(() => 0);
  }

  /** Backlog room of completed jobs, per partition, given back in one DECRBY each per turn of the event loop. */
  private roomToRelease = new Map<number, number>();

  private releaseRoom(partition: number, room: number): void {
    if (this.roomToRelease.size === 0) {
      setImmediate(() => {
        const due = [...this.roomToRelease];
        this.roomToRelease.clear();
        for (const [p, n] of due) {
          this.redis
            .decrby(keys.backlog(this.options.prefix, p), n)
            .catch((error) =>
              this.log.warn(
                { err: error, partition: p, room: n },
                "giving backlog room back failed; the idle-time reset takes it back",
              ),
            );
        }
      });
    }
    this.roomToRelease.set(partition, (this.roomToRelease.get(partition) ?? 0) + room);
  }

  /** How often a worker below its share looks for a free partition. */
  private get acquirePollMs(): number {
    return Math.max(20, Math.min(100, Math.floor(this.options.leaseMs / 50)));
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const { prefix, workerId, leaseMs, partitionCount } = this.options;
      const nowMs = Date.now();
      const beat = this.redis
        .multi()
        .zadd(keys.workers(prefix), nowMs, workerId)
        .zremrangebyscore(keys.workers(prefix), "-inf", nowMs - leaseMs);
      await beat.exec();
      const live = Math.max(1, await this.redis.zcount(keys.workers(prefix), nowMs - leaseMs, "+inf"));
      this.share = Math.ceil(partitionCount / live);

      for (const p of this.owned()) {
        if ((await this.redis.leaseRenew(keys.lease(prefix, p), workerId, leaseMs)) !== 1)
          await this.lose(p, "lease expired");
      }
      const mine = this.owned().filter((p) => !this.releasing.has(p));
      for (const p of mine.slice(this.share)) void this.release(p);
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
    // Taking partitions can wait on Postgres (a claim waits for the former owner's round): it runs
    // beside the ticks, never inside one, so heartbeats and lease renewals go on meanwhile.
    this.takeWhileShort(0);
  }

  private short(): number {
    return this.share - this.owned().filter((p) => !this.releasing.has(p)).length;
  }

  /**
   * Below its share: takes free partitions now (delayMs 0, after a tick) or after delayMs, and
   * again every acquirePollMs while still short. One taking at a time; a poll that finds no free
   * partition costs one MGET.
   */
  private takeWhileShort(delayMs: number): void {
    if (this.poller || this.acquiring || this.stopped || this.short() <= 0) return;
    this.poller = setTimeout(() => {
      this.poller = undefined;
      if (this.acquiring || this.stopped || this.short() <= 0) return;
      this.acquiring = true;
      this.acquire(this.short())
        .then(() => partitionsOwned.set(this.drains.size))
        .catch((error) => this.log.warn({ err: error }, "taking a free partition failed; retrying"))
        .finally(() => {
          this.acquiring = false;
          this.takeWhileShort(this.acquirePollMs);
        });
    }, delayMs);
  }

  private async acquire(wanted: number): Promise<void> {
    const { prefix, workerId, leaseMs, partitionCount } = this.options;
    // One GET per lease, not MGET: on a cluster each lease lives in its partition's slot.
    const holders = await Promise.all(
      Array.from({ length: partitionCount }, (_, p) => this.redis.get(keys.lease(prefix, p))),
    );
    // Start from a worker-specific offset so that workers starting together do not all race for partition 0.
    const offset = Number.parseInt(workerId.slice(-4), 16) % partitionCount || 0;
    for (let i = 0; i < partitionCount && wanted > 0; i++) {
      const p = (offset + i) % partitionCount;
      if (this.drains.has(p) || holders[p] !== null) continue;
      if (this.stopped) return;
      const ok = await this.redis.set(keys.lease(prefix, p), workerId, "PX", leaseMs, "NX");
      if (ok !== "OK") continue;
      try {
        const epoch = await claimPartition(this.db, p, workerId, leaseMs);
        this.drains.set(
          p,
          new PartitionDrain(this.redis, this.flusher, this.log, {
            prefix,
            partition: p,
            epoch,
            jobsMax: this.options.jobsMax,
            maxStalledCount: this.options.maxStalledCount,
            onFenced: (q, drain) => void this.lose(q, "fenced by a newer owner", drain),
            onCompleted: (room) => this.releaseRoom(p, room),
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
   * attempt stays failed for an operator. Bounded per pass (docs/decisions/0014).
   */
  private async housekeeping(): Promise<void> {
    const { prefix, partitionCount } = this.options;
    const corrected = await resetBacklogIfIdle(this.redis, prefix, partitionCount);
    if (corrected > 0) backlogResets.inc(corrected);
    for (const p of this.owned()) {
      // Made as the ingress makes its queues (the same streams cap: docs/decisions/0015).
      const queue = partitionQueue(this.redis, prefix, p);
      try {
        const failed = await queue.getFailed(0, 99);
        for (const job of failed) {
          if (job.failedReason?.includes(UNDECIDABLE)) continue;
          this.log.warn({ partition: p, jobId: job.id, reason: job.failedReason }, "re-queueing a failed job");
          await job.retry("failed").then(
            () => requeuedJobs.inc(),
            () => undefined,
          );
        }
      } finally {
        await queue.close();
      }
    }
  }
}
