import type pg from "pg";
import { invariant, tierKey, type Campaign, type QueuedAttempt, type RefillNeed, type Round } from "@quanta/domain";
import { attemptKey, type DecisionRow } from "./attempt-repo.js";
import { inPipelinedTransaction } from "./transaction.js";
import { refillTake, type RefillResult } from "./refill-tx.js";
import { readRound, type PartitionBatch } from "./round-read.js";
import { writeRound } from "./round-write.js";

export type { RefillNeed };
export { BATCH_READ_SQL, type PartitionBatch } from "./round-read.js";

/**
 * A worker's round: the attempts of the partitions it owns, decided in one READ COMMITTED
 * transaction and one commit (docs/decisions/0004).
 *
 * Inputs: batches of several partitions (each with the fencing epoch its owner holds, attempts
 * in arrival order). Steps:
 *   1. one statement (sent with BEGIN, docs/decisions/0009) reads for every batch at once: locks the partition rows
 *      and reads their epochs (a zombie stops here), locks and reads the budget left of capped
 *      campaigns, reads decisions already stored for these txns (replays, and retries after a
 *      commit whose outcome was lost: answered, never re-decided), reads which payers already
 *      hold a voucher, locks the round's share rows and takes KEY SHARE on the tier rows marked
 *      sold out (held to commit: see refund-tx.ts);
 *   2. decides in memory every attempt in arrival order, whatever its partition, against the
 *      stock the round's partitions hold together (the domain's Round, packages/domain/src/round.ts),
 *      until one needs a tier that none of the round's shares holds and that is not marked empty;
 *      then takes from that tier's pool if it can lock the tier row at once (SKIP LOCKED: a round
 *      never waits for a tier row; docs/decisions/0006) and goes on deciding;
 *   3. one statement (sent with COMMIT) inserts the decisions made, takes the used stock from the
 *      shares and the discounts from capped budgets.
 * When the tier row is busy (another refill or a refund holds it) or its pool is empty (the
 * other partitions' shares must be swept), the attempts from the one that needs stock on are
 * left undecided (`deferred`, in order) with the refill they wait for: the caller runs refillTx,
 * which may wait and sweep, then a round for them.
 * States of an attempt: stored before (answered from its row) | repeat of one in the round
 * (answered from the first copy's row) | decided (written) | deferred.
 *
 * Lock order, the same for every owner: partition rows by number, capped campaign rows by id,
 * share rows by (partition, campaign, tier), then KEY SHARE on marked tier rows; after its read a
 * round waits for no row lock (a tier row only with SKIP LOCKED; its insert can wait only for
 * another transaction inserting the same txn, and the ingress's statement takes its tier locks
 * before it inserts) and never touches another owner's shares. Refills that may wait or sweep
 * (refill-tx.ts) run in transactions of their own that hold nothing else. So a sweep that waits
 * for another owner's shares waits for a round that cannot be waiting for the sweep: no cycle
 * across owners (docs/decisions/0005).
 * Trade-off: a round that finds a tier row busy or its pool empty commits what it decided, and
 * the rest waits for one refill and one more round; in exchange no round ever waits on a lock
 * another owner holds while that owner waits on it.
 */
export type BatchResult =
  | { kind: "decided"; attempt: QueuedAttempt; row: DecisionRow; fresh: boolean }
  | { kind: "conflict"; attempt: QueuedAttempt; row: DecisionRow };

export interface RoundOutcome {
  /** A result for every attempt not deferred, batch after batch, in each batch's order. */
  results: BatchResult[];
  /** Attempts left undecided, in arrival order, waiting for `refill`. */
  deferred: QueuedAttempt[];
  refill?: RefillNeed;
  /** What the round's own refills did ("pool": taken from the pool; "empty": the tier was marked empty). */
  refills: RefillResult[];
}

/** For tests that must hold a round open between its read and its write (lock-order tests). */
export interface RoundProbe {
  afterRead?: () => Promise<void>;
}

/** Refills one round makes itself: a tier is refilled only until it is marked empty, so this only catches a bug. */
const ROUND_REFILLS_MAX = 1_000;

/** One round: reads, decides in memory, writes; stops at the first attempt whose refill it cannot make itself. */
export async function decideGroupTx(
  pool: pg.Pool,
  batches: readonly PartitionBatch[],
  campaigns: ReadonlyMap<string, Campaign>,
  partitionCount: number,
  probe: RoundProbe = {},
): Promise<RoundOutcome> {
  const live = [...batches].filter((b) => b.attempts.length > 0).sort((a, b) => a.partition - b.partition);
  for (let i = 1; i < live.length; i++)
    invariant(live[i]!.partition !== live[i - 1]!.partition, "two batches of one partition in a round");
  if (live.length === 0) return { results: [], deferred: [], refills: [] };
  return inPipelinedTransaction(pool, async (tx) => {
    const { round, stored } = await readRound(tx, live, campaigns);
    await probe.afterRead?.();
    const refills: RefillResult[] = [];
    let refill = round.decide(campaigns);
    while (refill) {
      invariant(refills.length < ROUND_REFILLS_MAX, "refills inside a round did not converge");
      const done = await takeFromPool(tx.client, round, refill, partitionCount);
      if (done === "deferred") break;
      refills.push(done);
      refill = round.decide(campaigns);
    }
    await writeRound(tx, round, stored);
    return { ...results(live, round, stored), refills, ...(refill ? { refill } : {}) };
  });
}

/**
 * A refill inside the round, only from the pool and only if the tier row can be locked at once:
 * "pool" (stock moved to the asking partition's share, here and in memory), "empty" (the tier is
 * marked: its attempts are refused sold_out, the row now locked against a refund until commit, as
 * KEY SHARE would), or "deferred" (row busy, or pool empty: refillTx after the round).
 */
async function takeFromPool(
  client: pg.PoolClient,
  round: Round,
  need: RefillNeed,
  partitionCount: number,
): Promise<RefillResult | "deferred"> {
  const tier = (
    await client.query<{ pool: number; chunk: number; sold_out: boolean }>({
      name: "round_refill_tier",
      text: "select pool, chunk, sold_out_at is not null as sold_out from tiers where campaign_id = $1 and id = $2 for update skip locked",
      values: [need.campaignId, need.tierId],
    })
  ).rows[0];
  const key = tierKey(need.campaignId, need.tierId);
  if (!tier) return "deferred";
  if (tier.sold_out) {
    round.markEmpty(key);
    return "empty";
  }
  if (tier.pool === 0) return "deferred";
  const take = refillTake(tier.pool, tier.chunk, need, partitionCount);
  await client.query({
    name: "round_refill_take",
    text: `with t as (update tiers set pool = pool - $3 where campaign_id = $1 and id = $2 returning 1)
           update tier_shares set remaining = remaining + $3 where campaign_id = $1 and tier_id = $2 and partition = $4`,
    values: [need.campaignId, need.tierId, take, need.partition],
  });
  round.addStock(need.partition, key, take);
  return "pool";
}

/** Every attempt's result, batch after batch; the deferred ones (repeats of them too) in arrival order. */
function results(
  batches: readonly PartitionBatch[],
  round: Round,
  stored: ReadonlyMap<string, DecisionRow>,
): { results: BatchResult[]; deferred: QueuedAttempt[] } {
  const deferredKeys = new Set(round.pending.map((a) => attemptKey(a.acquirerId, a.payment.txnId)));
  const fresh = new Set(round.decided.map((d) => d.attempt));
  const out: BatchResult[] = [];
  const deferred: QueuedAttempt[] = [];
  for (const { attempts } of batches) {
    for (const attempt of attempts) {
      const key = attemptKey(attempt.acquirerId, attempt.payment.txnId);
      if (deferredKeys.has(key)) {
        deferred.push(attempt);
        continue;
      }
      const row = stored.get(key);
      invariant(row, `attempt ${key} left undecided by its round`);
      out.push(
        row.body_hash === attempt.bodyHash
          ? { kind: "decided", attempt, row, fresh: fresh.has(attempt) }
          : { kind: "conflict", attempt, row },
      );
    }
  }
  deferred.sort((x, y) => x.receivedAtMs - y.receivedAtMs);
  return { results: out, deferred };
}
