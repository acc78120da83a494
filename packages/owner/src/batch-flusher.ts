import { decisionBody } from "@quanta/contract";
import { invariant, type QueuedAttempt } from "@quanta/domain";
import {
  CampaignCache,
  FencedOutError,
  attemptKey,
  decideGroupTx,
  rowDecision,
  settleImmediate,
  withRetry,
  type DecisionRow,
  type BatchResult,
  type Database,
  type GroupOutcome,
  type ImmediateOutcome,
  type ImmediateRecord,
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
 * transaction per round (decideGroupTx: every partition's attempts in arrival
 * order against the stock the round's partitions hold together, one commit).
 *
 * Inputs: parked items, each of one partition with the epoch its drain holds,
 * and the decisions an ingress made itself without stock (storeImmediate),
 * which ride in the same transaction, so that a round of an ingress costs
 * one commit whatever mix of answers it carries.
 * States of a round: taking (up to batchMax attempts) -> deciding (one group
 * transaction, retried on transient errors; a tier that runs dry for the
 * round's partitions is refilled inside) -> answered (queued: published to
 * the waiting ingresses; local: handed back).
 * A fenced partition's items are rejected (jobs go back to BullMQ for the new
 * owner, local attempts are queued by their caller) and the round runs again
 * without it.
 * Rounds start at most every roundGapMs, so under load one commit carries
 * everything that arrived in that window.
 * Trade-off: a partition waits for another's refill within a round, and an attempt can wait up to
 * roundGapMs for its round; in exchange one WAL flush and one transaction per
 * round serve every partition and the ingress's own decisions, where one
 * per partition and per intake batch made commits the largest Postgres cost.
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
  /**
   * A round starts at least this long after the previous one started (group commit window, like
   * Postgres's commit_delay): under load, what arrives meanwhile shares one commit; an idle
   * flusher starts at once. 0: a round starts as soon as the previous one ends.
   */
  roundGapMs: number;
}

interface ParkedImmediate {
  records: readonly ImmediateRecord[];
  resolve: (outcome: ImmediateOutcome) => void;
  reject: (error: unknown) => void;
}

export class BatchFlusher {
  private parked: FlushItem[] = [];
  private immediates: ParkedImmediate[] = [];
  private flushing = false;
  private lastRoundMs = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly pool: pg.Pool,
    private readonly redis: QuantaRedis,
    private readonly campaigns: CampaignCache,
    private readonly log: Logger,
    private readonly options: FlusherOptions,
  ) {}

  /** Attempts of a drain (partition and epoch) parked or being decided (a closing drain waits for none). */
  busy(partition: number, epoch: number): boolean {
    return this.parked.some((i) => i.partition === partition && i.epoch === epoch) || this.inFlight.has(`${partition}@${epoch}`);
  }

  private readonly inFlight = new Set<string>();

  park(item: FlushItem): void {
    for (const a of item.attempts) invariant(a.partition === item.partition, `attempt of partition ${a.partition} parked for ${item.partition}`);
    this.parked.push(item);
    if (!this.flushing) setImmediate(() => void this.flushLoop());
  }

  /**
   * Stores decisions that need no stock in the next round's transaction (recordImmediateBatch's
   * statement and semantics: stale sold_outs are not stored, a txn stored before answers with
   * its row). Needs no partition: works while this process owns none.
   */
  storeImmediate(records: readonly ImmediateRecord[]): Promise<ImmediateOutcome> {
    return new Promise((resolve, reject) => {
      this.immediates.push({ records, resolve, reject });
      if (!this.flushing) setImmediate(() => void this.flushLoop());
    });
  }

  private async flushLoop(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.parked.length > 0 || this.immediates.length > 0) {
        const waitMs = this.lastRoundMs + this.options.roundGapMs - performance.now();
        if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
        this.lastRoundMs = performance.now();
        const take: FlushItem[] = [];
        let size = 0;
        while (this.parked.length > 0 && (take.length === 0 || size + this.parked[0]!.attempts.length <= this.options.batchMax)) {
          const next = this.parked.shift()!;
          take.push(next);
          size += next.attempts.length;
        }
        const takeImmediate: ParkedImmediate[] = [];
        size = 0;
        while (this.immediates.length > 0 && (takeImmediate.length === 0 || size + this.immediates[0]!.records.length <= this.options.batchMax)) {
          const next = this.immediates.shift()!;
          takeImmediate.push(next);
          size += next.records.length;
        }
        for (const i of take) this.inFlight.add(`${i.partition}@${i.epoch}`);
        try {
          await this.round(take, takeImmediate);
        } finally {
          this.inFlight.clear();
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Decides the items taken and stores the immediate records; settles every one of them (resolve or reject). */
  private async round(take: FlushItem[], immediates: readonly ParkedImmediate[]): Promise<void> {
    // A partition lost and taken again can have items of its old drain still parked: only the
    // newest epoch is decided; the older ones are fenced (their drain is gone already).
    const newest = new Map<number, number>();
    for (const i of take) newest.set(i.partition, Math.max(newest.get(i.partition) ?? Number.NEGATIVE_INFINITY, i.epoch));
    for (const i of take) {
      if (i.epoch !== newest.get(i.partition)) i.reject(new FencedOutError(`partition ${i.partition} was taken again at epoch ${newest.get(i.partition)}`, i.partition));
    }
    let items = take.filter((i) => i.epoch === newest.get(i.partition));
    for (;;) {
      let decided: { byAttempt: Map<QueuedAttempt, BatchResult>; immediateRows: DecisionRow[] };
      try {
        decided = await this.decide(items, immediates.flatMap((i) => i.records));
      } catch (error) {
        const fenced = error instanceof FencedOutError ? error.partition : undefined;
        if (fenced === undefined) {
          for (const i of items) i.reject(error);
          for (const i of immediates) i.reject(error);
          this.log.error({ err: error }, "batch failed; queued jobs go back to BullMQ, local attempts to the queue");
          return;
        }
        // The other partitions' attempts are still ours: run the round again without the fenced one.
        const fencedEpoch = newest.get(fenced)!;
        const isLost = (i: FlushItem) => i.partition === fenced && i.epoch <= fencedEpoch;
        const lost = [...items, ...this.parked].filter(isLost);
        this.parked = this.parked.filter((i) => !isLost(i));
        for (const i of lost) i.reject(error);
        lost[0]?.onFenced();
        items = items.filter((i) => !isLost(i));
        if (items.length === 0 && immediates.length === 0) return;
        continue;
      }
      for (const i of items) i.resolve(i.attempts.map((a) => decided.byAttempt.get(a)!));
      for (const i of immediates) {
        await settleImmediate(this.db, i.records, decided.immediateRows).then(i.resolve, i.reject);
      }
      return;
    }
  }

  /** One group transaction (refills made inside it) gives every attempt a result. */
  private async decide(
    items: readonly FlushItem[],
    immediate: readonly ImmediateRecord[],
  ): Promise<{ byAttempt: Map<QueuedAttempt, BatchResult>; immediateRows: DecisionRow[] }> {
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
    if (total > 0) batchSize.observe(total);
    await this.ensureCampaigns(items);

    const retry = { attemptsMax: 8, baseDelayMs: 10, delayMaxMs: 2_000, onRetry: (cls: string) => txnRetries.inc({ code: cls }) };
    const started = performance.now();
    const group: GroupOutcome = await withRetry(
      () => decideGroupTx(this.pool, [...todo.values()], this.campaigns.byId(), this.options.partitionCount, immediate),
      retry,
    );
    txnDuration.observe({ kind: "batch" }, (performance.now() - started) / 1000);
    for (const r of group.refills) refills.inc({ result: r });
    const results = group.results;
    const immediateRows = group.immediateRows;
    invariant(results.length === total, `${results.length} results for ${total} attempts`);
    await this.publish(results, replyTo, queued);
    const byAttempt = new Map<QueuedAttempt, BatchResult>();
    for (const r of results) byAttempt.set(r.attempt, r);
    return { byAttempt, immediateRows };
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
