import { invariant, type Campaign, type QueuedAttempt } from "@quanta/domain";
import type pg from "pg";
import { decideGroupTx, type BatchResult, type PartitionBatch, type RoundProbe } from "./decide-batch-tx.js";
import { refillTx, type RefillMove } from "./refill-tx.js";
import { withRetry, type RetryOptions } from "./retry.js";

/**
 * Rounds until every attempt is decided: a round that cannot refill itself (decideGroupTx) is
 * followed by a refill (refillTx) and a round for what it deferred, each its own transaction, each retried on
 * transient errors (both are idempotent: a round answers what is stored from its rows, a refill
 * moves stock between rows that are all counted).
 * onCommit sees each round's results as soon as they are committed (a caller answers them then).
 * A FencedOutError ends the call: results of the rounds before it were already passed on.
 */
export interface RoundsHooks {
  retry: RetryOptions;
  onCommit: (results: readonly BatchResult[]) => Promise<void> | void;
  onRound?: (ms: number) => void;
  /** A refill: made inside a round (ms 0: no transaction of its own), or by refillTx. */
  onRefill?: (move: Pick<RefillMove, "result">, ms: number) => void;
  /** Test hook: runs inside every round, between its read and its write. */
  probe?: RoundProbe;
}

/** Refills one call may wait for: a tier is refilled until it is marked empty, so this only catches a bug. */
const REFILLS_MAX = 1_000;

export async function decideRounds(
  pool: pg.Pool,
  batches: readonly PartitionBatch[],
  campaigns: ReadonlyMap<string, Campaign>,
  partitionCount: number,
  hooks: RoundsHooks,
): Promise<void> {
  const epochOf = new Map(batches.map((b) => [b.partition, b.epoch]));
  let todo = batches;
  for (let refills = 0; ; refills++) {
    invariant(refills <= REFILLS_MAX, "refills did not converge");
    const started = performance.now();
    const outcome = await withRetry(
      () => decideGroupTx(pool, todo, campaigns, partitionCount, hooks.probe),
      hooks.retry,
    );
    hooks.onRound?.(performance.now() - started);
    for (const result of outcome.refills) hooks.onRefill?.({ result }, 0);
    await hooks.onCommit(outcome.results);
    if (!outcome.refill) {
      invariant(outcome.deferred.length === 0, "attempts deferred without a refill");
      return;
    }
    const need = outcome.refill;
    const refillStarted = performance.now();
    const move = await withRetry(() => refillTx(pool, need, partitionCount), hooks.retry);
    hooks.onRefill?.(move, performance.now() - refillStarted);
    todo = byPartition(outcome.deferred, epochOf);
  }
}

function byPartition(attempts: readonly QueuedAttempt[], epochOf: ReadonlyMap<number, number>): PartitionBatch[] {
  const groups = new Map<number, QueuedAttempt[]>();
  for (const a of attempts) {
    const group = groups.get(a.partition);
    if (group) group.push(a);
    else groups.set(a.partition, [a]);
  }
  return [...groups].map(([partition, as]) => ({ partition, epoch: epochOf.get(partition)!, attempts: as }));
}
