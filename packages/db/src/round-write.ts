import { invariant, type Decision, type QueuedAttempt, type Round } from "@quanta/domain";
import { ATTEMPT_COLUMNS, columnArrays } from "./attempt-columns.js";
import { attemptKey, decisionColumnList, recordValues, type DecisionRow } from "./attempt-repo.js";
import type { PipelinedTx } from "./transaction.js";

/**
 * Step 3 of a round (decide-batch-tx.ts): its one write, sent with COMMIT. Parameters of WRITE:
 * $1-$N one array per attempts column (ATTEMPT_COLUMNS order) of the decisions made; then
 * $N+1-$N+4 the (partition, campaign, tier, used) of each share the round took from; $N+5-$N+6
 * the (campaign, fen) each capped budget gave.
 */
const COLUMNS = ATTEMPT_COLUMNS;
const N = COLUMNS.length;

/**
 * The round's one write: its decisions, the used stock taken from the shares and the discounts
 * from capped budgets. The decrements are deltas, so the CHECKs (remaining >= 0,
 * budget_left_fen >= 0) backstop any arithmetic slip.
 */
const WRITE = `
  with spent as (
    update campaigns c set budget_left_fen = c.budget_left_fen - b.spent
      from unnest($${N + 5}::text[], $${N + 6}::bigint[]) as b(id, spent)
     where c.id = b.id and c.budget_capped
    returning 1),
  used as (
    update tier_shares s set remaining = s.remaining - u.used
      from unnest($${N + 1}::int[], $${N + 2}::text[], $${N + 3}::text[], $${N + 4}::int[])
             as u(partition, campaign_id, tier_id, used)
     where s.partition = u.partition and s.campaign_id = u.campaign_id and s.tier_id = u.tier_id
    returning 1)
  insert into attempts (${COLUMNS.map(([c]) => c).join(", ")})
  select * from unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(", ")})
  returning ${decisionColumnList()}`;

/** Step 3: the round's one write, sent with the COMMIT (a round that decided nothing just commits). */
export async function writeRound(tx: PipelinedTx, round: Round, stored: Map<string, DecisionRow>): Promise<void> {
  if (round.decided.length === 0) return;
  const records = round.decided.map(
    ({ attempt, decision }) => recordValues(toRecord(attempt, decision)) as Record<string, unknown>,
  );
  const usedRows = round.usedStock();
  const spentBy = round.budgetSpent();
  const written = await tx.commit<DecisionRow>({
    name: "batch_write",
    text: WRITE,
    values: [
      ...columnArrays(records),
      usedRows.map((u) => u.partition),
      usedRows.map((u) => u.campaignId),
      usedRows.map((u) => u.tierId),
      usedRows.map((u) => u.n),
      spentBy.map(([id]) => id),
      spentBy.map(([, fen]) => fen),
    ],
  });
  invariant(written.rows.length === records.length, `wrote ${written.rows.length} of ${records.length} decisions`);
  for (const r of written.rows) stored.set(attemptKey(r.acquirer_id, r.txn_id), r);
}

function toRecord(a: QueuedAttempt, decision: Decision) {
  return {
    acquirerId: a.acquirerId,
    bodyHash: a.bodyHash,
    payment: a.payment,
    receivedAtMs: a.receivedAtMs,
    partition: a.partition,
    decision,
    decidedBy: "worker" as const,
  };
}
