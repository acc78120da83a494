import { decisionBody } from "@quanta/contract";
import { invariant, type QueuedAttempt } from "@quanta/domain";
import {
  CampaignCache,
  FencedOutError,
  decideRounds,
  paceStart,
  rowDecision,
  takeUpTo,
  type BatchResult,
  type PartitionBatch,
  type RetryOptions,
} from "@quanta/db";
import { deleteKeys, keys, waitKey, type QuantaRedis } from "@quanta/queue";
import {
  refills,
  roundSize,
  txnDuration,
  txnRetries,
  workerDecisionLatency,
  workerDecisions,
  type Logger,
} from "@quanta/telemetry";
import type pg from "pg";

/**
 * The one writer of a worker process: the attempts of every job of every partition the process
 * owns are parked here, and one loop turns everything parked into rounds.
 *
 * Inputs: parked items (one queue job each: a partition, the epoch its drain holds, attempts in
 * arrival order, the ingress channel that waits for them).
 * States of a round: taking (up to batchMax attempts of every partition) -> deciding (one
 * transaction, decideGroupTx, retried on transient errors) -> answered (published: one message
 * per waiting ingress and the txn registrations deleted, in one Redis round trip) -> [refilling (refillTx, its own transaction) -> deciding the deferred rest]
 * -> done (every item resolved, or rejected so that BullMQ hands its job out again).
 * A fenced partition's items are rejected (and its drain told) and the round goes on without it.
 * Rounds start at most every roundGapMs: under load one commit carries everything that arrived in
 * that window (group commit, docs/decisions/0001); an idle flusher starts at once.
 * Trade-off: an attempt can wait up to roundGapMs for its round, and a round that runs dry waits
 * for a refill; in exchange one commit serves every partition the process owns (docs/decisions/0004).
 */
export interface FlushItem {
  partition: number;
  epoch: number;
  attempts: readonly QueuedAttempt[];
  /** The ingress channel to publish to; "" when nobody waits. */
  replyTo: string;
  /** Every attempt's result, in order, once all are decided. */
  resolve: (results: BatchResult[]) => void;
  reject: (error: unknown) => void;
  onFenced: () => void;
}

export interface FlusherOptions {
  prefix: string;
  partitionCount: number;
  batchMax: number;
  /** A round starts at least this long after the previous one started (0: at once). */
  roundGapMs: number;
  /**
   * Fault injection for tests: the process stops itself (SIGSTOP) between the read and the write
   * of its Nth round, holding the round's row locks, as a frozen owner would. 0: never.
   */
  faultStopAfterReadRound?: number;
}

const RETRY: RetryOptions = {
  attemptsMax: 8,
  baseDelayMs: 10,
  delayMaxMs: 2_000,
  onRetry: (cls) => txnRetries.inc({ code: cls }),
};

export class BatchFlusher {
  private parked: FlushItem[] = [];
  private flushing = false;
  private lastRoundMs = 0;
  private readonly inFlight = new Set<string>();
  private roundsRead = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly redis: QuantaRedis,
    private readonly campaigns: CampaignCache,
    private readonly log: Logger,
    private readonly options: FlusherOptions,
  ) {}

  /** Attempts of a drain (partition and epoch) parked or being decided (a closing drain waits for them). */
  busy(partition: number, epoch: number): boolean {
    return (
      this.parked.some((i) => i.partition === partition && i.epoch === epoch) ||
      this.inFlight.has(`${partition}@${epoch}`)
    );
  }

  park(item: FlushItem): void {
    for (const a of item.attempts)
      invariant(a.partition === item.partition, `attempt of partition ${a.partition} parked for ${item.partition}`);
    this.parked.push(item);
    if (!this.flushing) setImmediate(() => void this.flushLoop());
  }

  private async flushLoop(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.parked.length > 0) {
        this.lastRoundMs = await paceStart(this.lastRoundMs, this.options.roundGapMs);
        const take = takeUpTo(this.parked, this.options.batchMax, (i) => i.attempts.length);
        for (const i of take) this.inFlight.add(`${i.partition}@${i.epoch}`);
        try {
          await this.round(take);
        } finally {
          this.inFlight.clear();
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async faultStopAfterRead(): Promise<void> {
    if (++this.roundsRead !== this.options.faultStopAfterReadRound) return;
    this.log.warn(
      { round: this.roundsRead },
      "fault injection: stopping this process inside a round (QUANTA_FAULT_STOP_AFTER_READ_ROUND)",
    );
    process.kill(process.pid, "SIGSTOP");
    // Resumed by SIGCONT: the round goes on to its write, which the server has ended by now.
    await new Promise((r) => setImmediate(r));
  }

  /** Decides the items taken; settles every one of them (resolve or reject). */
  private async round(take: readonly FlushItem[]): Promise<void> {
    // A partition lost and taken again can have items of its old drain still parked: only the
    // newest epoch is decided; the older ones are fenced (their drain is gone already).
    const newest = new Map<number, number>();
    for (const i of take)
      newest.set(i.partition, Math.max(newest.get(i.partition) ?? Number.NEGATIVE_INFINITY, i.epoch));
    for (const i of take) {
      if (i.epoch !== newest.get(i.partition))
        i.reject(
          new FencedOutError(
            `partition ${i.partition} was taken again at epoch ${newest.get(i.partition)}`,
            i.partition,
          ),
        );
    }
    let items = take.filter((i) => i.epoch === newest.get(i.partition));
    const results = new Map<QueuedAttempt, BatchResult>();
    const replyTo = new Map<QueuedAttempt, string>();
    for (const i of items) for (const a of i.attempts) replyTo.set(a, i.replyTo);
    roundSize.observe(replyTo.size);
    await this.ensureCampaigns([...replyTo.keys()]);

    while (items.length > 0) {
      const batches = new Map<number, PartitionBatch & { attempts: QueuedAttempt[] }>();
      for (const i of items) {
        const batch = batches.get(i.partition) ?? { partition: i.partition, epoch: i.epoch, attempts: [] };
        batch.attempts.push(...i.attempts.filter((a) => !results.has(a)));
        batches.set(i.partition, batch);
      }
      try {
        await decideRounds(this.pool, [...batches.values()], this.campaigns.byId(), this.options.partitionCount, {
          retry: RETRY,
          ...((this.options.faultStopAfterReadRound ?? 0) > 0
            ? { probe: { afterRead: () => this.faultStopAfterRead() } }
            : {}),
          onRound: (ms) => txnDuration.observe({ kind: "batch" }, ms / 1000),
          onRefill: (move, ms) => {
            if (ms > 0) txnDuration.observe({ kind: "refill" }, ms / 1000);
            refills.inc({ result: move.result });
          },
          onCommit: async (committed) => {
            for (const r of committed) results.set(r.attempt, r);
            await this.publish(committed, replyTo);
            items = this.settleDone(items, results);
          },
        });
        invariant(items.length === 0, `${items.length} items left unsettled by their rounds`);
        return;
      } catch (error) {
        const fenced = error instanceof FencedOutError ? error.partition : undefined;
        if (fenced === undefined) {
          for (const i of items) i.reject(error);
          this.log.error({ err: error }, "round failed; its jobs go back to BullMQ");
          return;
        }
        // The other partitions' attempts are still ours: go on without the fenced one.
        const isLost = (i: FlushItem) => i.partition === fenced && i.epoch <= newest.get(fenced)!;
        const lost = [...items, ...this.parked].filter(isLost);
        this.parked = this.parked.filter((i) => !isLost(i));
        for (const i of lost) i.reject(error);
        lost[0]?.onFenced();
        items = items.filter((i) => !isLost(i));
      }
    }
  }

  /** Resolves the items whose every attempt has a result; returns the others. */
  private settleDone(items: readonly FlushItem[], results: ReadonlyMap<QueuedAttempt, BatchResult>): FlushItem[] {
    const open: FlushItem[] = [];
    for (const i of items) {
      if (i.attempts.every((a) => results.has(a))) i.resolve(i.attempts.map((a) => results.get(a)!));
      else open.push(i);
    }
    return open;
  }

  private async ensureCampaigns(attempts: readonly QueuedAttempt[]): Promise<void> {
    const known = this.campaigns.byId();
    if (attempts.every((a) => known.has(a.request.campaignId))) return;
    await this.campaigns.refresh();
  }

  /**
   * After a commit: each waiting ingress gets one message with its answers (SPUBLISH on its own
   * sharded channel: on a cluster only the master of that channel's slot carries it), and the
   * decided txns' registrations are deleted (one DEL per registry shard on a cluster), whatever
   * body they name: Postgres answers for these txns from now on, a copy of the stored body with
   * its decision, another body 409 (docs/decisions/0010). Best effort: a waiter that misses its
   * answer asks Postgres, then says 202; a registration left behind is checked against Postgres,
   * and expires. (Backlog room goes back when a job completes: see PartitionDrain.)
   */
  private async publish(results: readonly BatchResult[], replyTo: ReadonlyMap<QueuedAttempt, string>): Promise<void> {
    if (results.length === 0) return;
    const byChannel = new Map<string, [string, unknown][]>();
    const nowMs = Date.now();
    const forget: string[] = [];
    for (const r of results) {
      const a = r.attempt;
      if (r.kind === "decided" && r.fresh) {
        const d = rowDecision(r.row);
        workerDecisions.inc({
          outcome: d.status,
          reason: d.status === "rejected" ? d.reason : "",
          tier: d.status === "granted" ? d.tierId : "",
        });
        workerDecisionLatency.observe(Math.max(0, nowMs - a.receivedAtMs) / 1000);
      }
      forget.push(keys.txn(this.options.prefix, a.acquirerId, a.payment.txnId));
      const target = replyTo.get(a);
      if (!target) continue;
      const body = r.kind === "decided" ? decisionBody(r.row.txn_id, rowDecision(r.row)) : null;
      const list = byChannel.get(target) ?? [];
      list.push([waitKey(a.acquirerId, a.payment.txnId, a.bodyHash), body]);
      byChannel.set(target, list);
    }
    // Not one pipeline: on a cluster the channels and the registry shards live on several masters.
    await Promise.all([
      ...[...byChannel].map(([target, answers]) =>
        this.redis.spublish(keys.decisions(this.options.prefix, target), JSON.stringify({ answers })),
      ),
      deleteKeys(this.redis, forget),
    ]).catch((error: unknown) => this.log.warn({ err: error }, "publishing decisions failed; waiters will answer 202"));
  }
}
