import { findAttempts, rowDecision, type connect } from "@quanta/db";
import { decisionBody } from "@quanta/contract";
import { countBy, type CallbackClient, type SentRecord } from "@quanta/loadtest";

/**
 * I4 seen through GET: a txn's GET returns its stored decision (all 202-answered txns, all txns
 * sent more than once, then a sample up to getChecksMax). The answers the callbacks got are
 * compared with the store by answersAgainstStore (answer-checks.ts).
 */
export interface GetChecks {
  /** GETs sent. */
  asked: number;
  /** GETs whose answer was not 200 with the stored decision. */
  mismatches: string[];
}

/** GET for the acknowledged txns, each against its stored decision; every disagreement described. */
export async function checkThroughGet(
  client: CallbackClient,
  db: ReturnType<typeof connect>,
  acquirerId: string,
  records: readonly SentRecord[],
  getChecksMax: number,
): Promise<GetChecks> {
  // Every acknowledged txn, as I3 counts them: another body of a txn ("conflict") is acknowledged
  // when it reached the ingress before the first one did, and its 200 must equal the stored decision.
  const accepted = records.filter((r) => r.kind !== "forged" && (r.status === 200 || r.status === 202));
  const rows = await findAttempts(
    db.kysely,
    [...new Set(accepted.map((r) => r.txnId))].map((txnId) => ({ acquirerId, txnId })),
  );
  const stored = new Map(rows.map((row) => [row.txn_id, JSON.stringify(decisionBody(row.txn_id, rowDecision(row)))]));
  // The 200 answers themselves are checked against the store by answersAgainstStore (I4): here, GET only.
  const mismatches: string[] = [];
  const counts = countBy(accepted, (r) => r.txnId);
  const toAsk = new Set<string>();
  for (const r of accepted) if (r.status === 202 || (counts.get(r.txnId) ?? 0) > 1) toAsk.add(r.txnId);
  for (const r of accepted) {
    if (toAsk.size >= getChecksMax) break;
    toAsk.add(r.txnId);
  }
  const list = [...toAsk].slice(0, Math.max(getChecksMax, 0) || toAsk.size);
  for (let i = 0; i < list.length; i += 64) {
    await Promise.all(
      list.slice(i, i + 64).map(async (txnId) => {
        const answer = await client.getAttempt(txnId);
        const expected = stored.get(txnId);
        if (answer.status !== 200 || JSON.stringify(answer.body) !== expected) {
          mismatches.push(`GET ${txnId}: ${answer.status} ${JSON.stringify(answer.body)}, stored ${expected}`);
        }
      }),
    );
  }
  return { asked: list.length, mismatches };
}
