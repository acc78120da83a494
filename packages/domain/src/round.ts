import type { Campaign } from "./campaign.js";
import { invariant } from "./assert.js";
import { decideBatch, holderKey, tierKey, type BatchState } from "./decide-batch.js";
import type { Decision } from "./decision.js";
import type { QueuedAttempt } from "./queued-attempt.js";

/**
 * A worker's round in memory: the rules between the round's read and its write, with no IO.
 *
 * Inputs: the round's batches (partition, attempts in arrival order), and what the read found:
 * the txns decided before, the payers holding a voucher, the tiers marked empty, each partition's
 * share of each tier named, and the budget left of capped campaigns.
 * States of an attempt: stored before or a repeat within the round (not decided here: the caller
 * answers it from the stored row) | pending | decided | deferred (still pending when the round
 * stops for a refill it cannot make).
 * decide() decides pending attempts in arrival order, whatever their partition, against the stock
 * the round's partitions hold together, until one needs a tier none of them holds and that is not
 * marked empty: it returns that refill. The caller then adds stock (addStock) or marks the tier
 * empty (markEmpty) and calls decide() again, or stops; what is still pending is deferred.
 * Each grant is taken from its own partition's share while that holds any, then from the round's
 * other partitions in order. The write is the difference: usedStock() and budgetSpent().
 * Trade-off: deciding across the round's partitions against their combined stock lets one round
 * serve an attempt whose own share is empty, at the price of partitions' shares drifting apart
 * (refills even them out; docs/decisions/0004).
 */
export const attemptKey = (acquirerId: string, txnId: string): string => `${acquirerId}/${txnId}`;

/** A tier the round's shares ran out of, for a refill. */
export interface RefillNeed {
  /** The partition whose share the refill goes to (the first deferred attempt's). */
  partition: number;
  campaignId: string;
  tierId: string;
  /** Deferred attempts this tier could serve. */
  need: number;
  /** Partitions the round decided together: the refill takes a fair part for each. */
  partitionsAsking: number;
}

export interface RoundRead {
  /** attemptKeys of txns whose decision is stored. */
  readonly storedKeys: ReadonlySet<string>;
  /** holderKeys of payers holding a voucher (slot not released). */
  readonly holders: ReadonlySet<string>;
  /** tierKeys of tiers marked empty everywhere. */
  readonly empty: ReadonlySet<string>;
  /** By partition, then tierKey: each share as read (absent: the partition holds none of it). */
  readonly shares: ReadonlyMap<number, ReadonlyMap<string, number>>;
  /** Budget left, in fen, of capped campaigns. */
  readonly budgetLeft: ReadonlyMap<string, number>;
}

export interface StockUse {
  partition: number;
  campaignId: string;
  tierId: string;
  n: number;
}

export class Round {
  readonly partitions: readonly number[];
  /** The round's fresh decisions, in the order made. */
  readonly decided: { attempt: QueuedAttempt; decision: Decision }[] = [];
  private pendingAttempts: QueuedAttempt[];
  private readonly holders: Set<string>;
  private readonly empty: Set<string>;
  /** Shares as decided, and as read plus what refills added, by partition then tierKey. */
  private readonly shares = new Map<number, Map<string, number>>();
  private readonly read = new Map<number, Map<string, number>>();
  private readonly combined = new Map<string, number>();
  private readonly budgetLeft: Map<string, number>;
  private readonly budgetBefore: ReadonlyMap<string, number>;

  constructor(batches: readonly { partition: number; attempts: readonly QueuedAttempt[] }[], found: RoundRead) {
    this.partitions = batches.map((b) => b.partition);
    for (let i = 1; i < this.partitions.length; i++)
      invariant(this.partitions[i]! > this.partitions[i - 1]!, "a round's partitions must be distinct and ascending");
    for (const p of this.partitions) {
      const share = new Map(found.shares.get(p) ?? []);
      this.shares.set(p, share);
      this.read.set(p, new Map(share));
      for (const [key, n] of share) this.combined.set(key, (this.combined.get(key) ?? 0) + n);
    }
    this.holders = new Set(found.holders);
    this.empty = new Set(found.empty);
    this.budgetLeft = new Map(found.budgetLeft);
    this.budgetBefore = new Map(found.budgetLeft);
    // Attempts decided before, or repeated within the round, are not decided again; the rest in
    // arrival order (a stable sort keeps each partition's own order).
    const seen = new Set<string>();
    const pending: QueuedAttempt[] = [];
    for (const b of batches) {
      for (const a of b.attempts) {
        invariant(a.partition === b.partition, `attempt queued to partition ${a.partition} reached ${b.partition}`);
        const key = attemptKey(a.acquirerId, a.payment.txnId);
        if (found.storedKeys.has(key) || seen.has(key)) continue;
        seen.add(key);
        pending.push(a);
      }
    }
    this.pendingAttempts = pending.sort((x, y) => x.receivedAtMs - y.receivedAtMs);
  }

  /** Attempts not decided yet, in arrival order (after the last decide(): the deferred ones). */
  get pending(): readonly QueuedAttempt[] {
    return this.pendingAttempts;
  }

  /** Decides pending attempts in arrival order until one needs a refill, which it returns. */
  decide(campaigns: ReadonlyMap<string, Campaign>): RefillNeed | undefined {
    const pending = this.pendingAttempts;
    if (pending.length === 0) return undefined;
    const outcome = decideBatch(
      pending.map((a) => ({ payerId: a.payment.payerId, amountFen: a.payment.amountFen, request: a.request })),
      {
        share: this.combined,
        empty: this.empty,
        holders: this.holders,
        budgetLeft: this.budgetLeft,
      } satisfies BatchState,
      campaigns,
    );
    outcome.decisions.forEach((decision, i) => {
      const attempt = pending[i]!;
      this.decided.push({ attempt, decision });
      if (decision.status === "granted") this.takeOne(attempt.partition, tierKey(decision.campaignId, decision.tierId));
    });
    this.pendingAttempts = pending.slice(outcome.decisions.length);
    if (!outcome.refill) {
      invariant(this.pendingAttempts.length === 0, "attempts left over without a refill");
      return undefined;
    }
    const { campaignId, tierId } = outcome.refill;
    return {
      partition: this.pendingAttempts[0]!.partition,
      campaignId,
      tierId,
      need: this.pendingAttempts.filter(
        (a) => a.request.campaignId === campaignId && a.request.tierIds.includes(tierId),
      ).length,
      partitionsAsking: this.partitions.length,
    };
  }

  /** Stock a refill moved into a partition's share of the round: counted as read, so the write's deltas stay the use. */
  addStock(partition: number, key: string, n: number): void {
    invariant(n > 0, `a refill of ${n}`);
    const share = this.shares.get(partition);
    invariant(share, `a refill of partition ${partition}, not in the round`);
    share.set(key, (share.get(key) ?? 0) + n);
    const read = this.read.get(partition)!;
    read.set(key, (read.get(key) ?? 0) + n);
    this.combined.set(key, (this.combined.get(key) ?? 0) + n);
  }

  /** A tier found empty everywhere: its attempts are refused sold_out (or take a lower tier). */
  markEmpty(key: string): void {
    this.empty.add(key);
  }

  /** What the round took from each share: the write's decrements. */
  usedStock(): StockUse[] {
    const used: StockUse[] = [];
    for (const [partition, share] of this.shares) {
      for (const [key, n] of share) {
        const before = this.read.get(partition)!.get(key) ?? 0;
        if (before === n) continue;
        invariant(before - n > 0, `share of ${key} grew inside a round`);
        const slash = key.indexOf("/");
        used.push({ partition, campaignId: key.slice(0, slash), tierId: key.slice(slash + 1), n: before - n });
      }
    }
    return used;
  }

  /** What the round's grants drew from capped budgets, by campaign id: the write's decrements. */
  budgetSpent(): [campaignId: string, fen: number][] {
    const spent: [string, number][] = [];
    for (const [id, left] of this.budgetLeft) {
      const before = this.budgetBefore.get(id)!;
      if (before === left) continue;
      invariant(left >= 0 && before - left > 0, `budget of ${id} went wrong inside a round`);
      spent.push([id, before - left]);
    }
    return spent;
  }

  /** One voucher of a tier out of the round's shares: the attempt's own partition first. */
  private takeOne(partition: number, key: string): void {
    const own = this.shares.get(partition)!;
    let from = (own.get(key) ?? 0) > 0 ? own : undefined;
    for (const p of this.partitions) {
      if (from) break;
      const share = this.shares.get(p)!;
      if ((share.get(key) ?? 0) > 0) from = share;
    }
    invariant(from, `a grant of ${key} that no share of the round holds`);
    from.set(key, from.get(key)! - 1);
  }
}

/** The holderKey of an attempt's payer in its activity (what the round's read looks up). */
export const attemptHolderKey = (a: QueuedAttempt): string =>
  holderKey(a.request.campaignId, a.request.activityId, a.payment.payerId);
