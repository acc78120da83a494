import { decisionBody } from "@quanta/contract";
import { invariant, type QueuedAttempt } from "@quanta/domain";
import {
  CampaignCache,
  FencedOutError,
  attemptKey,
  decideGroupTx,
  refillShareTx,
  rowDecision,
  withRetry,
  type BatchResult,
  type BatchTxOutcome,
  type Database,
  type PartitionBatch,
} from "@quanta/db";
import { keys, type QuantaRedis } from "@quanta/queue";
import { batchSize, decisionLatency, decisions, refills, txnDuration, txnRetries, type Logger } from "@quanta/telemetry";
import type { Kysely } from "kysely";
import type pg from "pg";

/**
 * The one writer of an owner process: every attempt of every partition the
 * process owns, queued (a BullMQ job) or local (an ingress's own), is parked
 * here, and a single loop turns everything parked into one Postgres
 * transaction per round (decideGroupTx: each partition's batch in partition
 * order, one commit), in the order parked.
 *
 * Inputs: parked items, each of one partition with the epoch its drain holds.
 * States of a round: taking (up to batchMax attempts) -> deciding (one group
 * transaction, retried on transient errors) -> refilling (a partition whose
 * share ran dry refills it, then its rest joins the next round) -> answered
 * (queued: published to the waiting ingresses; local: handed back).
 * A fenced partition's items are rejected (jobs go back to BullMQ for the new
 * owner, local attempts are queued by their caller) and the round runs again
 * without it.
 * Trade-off: a partition can wait for another's refill within a round, and a
 * round is as slow as its slowest partition; in exchange one WAL flush and
 * one transaction per round serve every partition, where one per partition
 * made commits the largest Postgres cost.
 */
export interface FlushItem {
  partition: number;
  epoch: number;
  attempts: readonly QueuedAttempt[];
  /** The ingress channel to publish to (queued items only); "" for local items and jobs without one. */
  replyTo: string;
  queued: boolean;
  resolve: (results: BatchResult[]) => void;
  reject: (error: unknown) => void;
  onFenced: () => void;
}

export interface FlusherOptions {
  prefix: string;
  partitionCount: number;
  batchMax: number;
}

const ROUNDS_MAX = 10_000;

export class BatchFlusher {
  private parked: FlushItem[] = [];
  private flushing = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly pool: pg.Pool,
    private readonly redis: QuantaRedis,
    private readonly campaigns: CampaignCache,
    private readonly log: Logger,
    private readonly options: FlusherOptions,
  ) {}

  /** Attempts parked or being decided for a partition (a closing drain waits for 0). */
  busy(partition: number): boolean {
    return this.parked.some((i) => i.partition === partition) || this.inFlight.has(partition);
  }

  private readonly inFlight = new Set<number>();

  park(item: FlushItem): void {
    for (const a of item.attempts) invariant(a.partition === item.partition, `attempt of partition ${a.partition} parked for ${item.partition}`);
    this.parked.push(item);
    if (!this.flushing) setImmediate(() => void this.flushLoop());
  }

  private async flushLoop(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.parked.length > 0) {
        const take: FlushItem[] = [];
        let size = 0;
        while (this.parked.length > 0 && (take.length === 0 || size + this.parked[0]!.attempts.length <= this.options.batchMax)) {
          const next = this.parked.shift()!;
          take.push(next);
          size += next.attempts.length;
        }
        for (const i of take) this.inFlight.add(i.partition);
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

  /** Decides the items taken; settles every one of them (resolve or reject). */
  private async round(take: FlushItem[]): Promise<void> {
    let items = take;
    for (;;) {
      try {
        const byAttempt = await this.decide(items);
        for (const i of items) i.resolve(i.attempts.map((a) => byAttempt.get(a)!));
        return;
      } catch (error) {
        const fenced = error instanceof FencedOutError ? error.partition : undefined;
        if (fenced === undefined) {
          for (const i of items) i.reject(error);
          this.log.error({ err: error }, "batch failed; queued jobs go back to BullMQ, local attempts to the queue");
          return;
        }
        // The other partitions' attempts are still ours: run the round again without the fenced one.
        const lost = [...items, ...this.parked].filter((i) => i.partition === fenced);
        this.parked = this.parked.filter((i) => i.partition !== fenced);
        for (const i of lost) i.reject(error);
        lost[0]?.onFenced();
        items = items.filter((i) => i.partition !== fenced);
        if (items.length === 0) return;
      }
    }
  }

  /** One or more group transactions (refills in between) until every attempt has a result. */
  private async decide(items: readonly FlushItem[]): Promise<Map<QueuedAttempt, BatchResult>> {
    const todo = new Map<number, PartitionBatch>();
    const replyTo = new Map<string, string>();
    let queued = 0;
    let total = 0;
    for (const i of items) {
      const batch = todo.get(i.partition) ?? { partition: i.partition, epoch: i.epoch, attempts: [] };
      invariant(batch.epoch === i.epoch, `two epochs of partition ${i.partition} in one round`);
      (batch.attempts as QueuedAttempt[]).push(...i.attempts);
      todo.set(i.partition, batch);
      total += i.attempts.length;
      if (!i.queued) continue;
      queued += i.attempts.length;
      for (const a of i.attempts) replyTo.set(attemptKey(a.acquirerId, a.payment.txnId), i.replyTo);
    }
    batchSize.observe(total);
    await this.ensureCampaigns(items);

    const retry = { attemptsMax: 8, baseDelayMs: 10, delayMaxMs: 2_000, onRetry: (cls: string) => txnRetries.inc({ code: cls }) };
    const results: BatchResult[] = [];
    for (let round = 0; todo.size > 0; round++) {
      // Each round decides everything left or makes refills; a tier is refilled only until it is
      // marked empty, so rounds are bounded by stock movements.
      invariant(round < ROUNDS_MAX, "refill rounds did not converge");
      const batches = [...todo.values()];
      const started = performance.now();
      const outcomes: BatchTxOutcome[] = await withRetry(() => decideGroupTx(this.pool, batches, this.campaigns.byId()), retry);
      txnDuration.observe({ kind: "batch" }, (performance.now() - started) / 1000);
      todo.clear();
      for (const [k, outcome] of outcomes.entries()) {
        const batch = batches[k]!;
        results.push(...outcome.results);
        if (!outcome.refill) {
          invariant(outcome.rest.length === 0, "attempts left over without a refill");
          continue;
        }
        const { campaignId, tierId } = outcome.refill;
        const need = outcome.rest.filter((a) => a.request.campaignId === campaignId && a.request.tierIds.includes(tierId)).length;
        const refillStarted = performance.now();
        const refilled = await withRetry(
          () => refillShareTx(this.db, batch.partition, this.options.partitionCount, campaignId, tierId, need),
          retry,
        );
        txnDuration.observe({ kind: "refill" }, (performance.now() - refillStarted) / 1000);
        refills.inc({ result: refilled });
        todo.set(batch.partition, { ...batch, attempts: outcome.rest });
      }
    }
    invariant(results.length === total, `${results.length} results for ${total} attempts`);
    await this.publish(results, replyTo, queued);
    const byAttempt = new Map<QueuedAttempt, BatchResult>();
    for (const r of results) byAttempt.set(r.attempt, r);
    return byAttempt;
  }

  private async ensureCampaigns(items: readonly FlushItem[]): Promise<void> {
    const known = this.campaigns.byId();
    if (items.every((i) => i.attempts.every((a) => known.has(a.request.campaignId)))) return;
    await this.campaigns.refresh();
  }

  /** Counts every fresh decision; tells waiting ingresses the queued ones and gives their backlog room back. */
  private async publish(results: readonly BatchResult[], replyTo: ReadonlyMap<string, string>, queued: number): Promise<void> {
    const byChannel = new Map<string, [string, unknown][]>();
    const nowMs = Date.now();
    for (const r of results) {
      if (r.kind === "decided" && r.fresh) {
        const d = rowDecision(r.row);
        decisions.inc({ outcome: d.status, reason: d.status === "rejected" ? d.reason : "", tier: d.status === "granted" ? d.tierId : "" });
        decisionLatency.observe(Math.max(0, nowMs - r.attempt.receivedAtMs) / 1000);
      }
      const key = attemptKey(r.attempt.acquirerId, r.attempt.payment.txnId);
      const target = replyTo.get(key);
      if (!target) continue;
      const body = r.kind === "decided" ? decisionBody(r.row.txn_id, rowDecision(r.row)) : null;
      const list = byChannel.get(target) ?? [];
      list.push([key, body]);
      byChannel.set(target, list);
    }
    // Local attempts took no queue room and have no waiter: their caller holds the answer.
    if (queued === 0) return;
    // One round trip: every ingress's answers and the backlog room these attempts held.
    // Best effort: a waiter that misses its answer says 202 and the decision is in Postgres;
    // a lost release is taken back by the idle-time backlog reset.
    const pipeline = this.redis.pipeline();
    for (const [target, answers] of byChannel) pipeline.publish(keys.decisions(this.options.prefix, target), JSON.stringify({ answers }));
    pipeline.decrby(keys.backlog(this.options.prefix), queued);
    await pipeline.exec().catch(() => undefined);
  }
}
