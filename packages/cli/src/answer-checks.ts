import { decisionBody } from "@quanta/contract";
import { rowDecision, type DecisionRow } from "@quanta/db";
import type { SentRecord } from "@quanta/loadtest";

/**
 * Every answer the client got, against the decision stored for its txn: a 200 carries the stored
 * decision for the stored body; a copy with another body (the generator's conflicts differ in the
 * amount) gets 409, or no acceptance at all (no answer, 503), never a decision; a copy of the
 * stored body never gets 409. Returns the answers that break this, for the caller to assert empty.
 */
export function answersAgainstStore(records: readonly SentRecord[], rows: readonly (DecisionRow & { amount_fen: number })[]): string[] {
  const byTxn = new Map(rows.map((row) => [row.txn_id, row]));
  const wrong: string[] = [];
  for (const r of records) {
    if (r.kind === "forged") {
      if (r.status !== 401 && r.status !== 0) wrong.push(`${r.txnId} forged: ${r.status}`);
      continue;
    }
    const row = byTxn.get(r.txnId);
    const amountFen = (JSON.parse(r.body) as { amountFen: number }).amountFen;
    const sameBody = row !== undefined && Number(row.amount_fen) === amountFen;
    if (r.status === 200) {
      if (!row) wrong.push(`${r.txnId} (${r.kind}): 200 with nothing stored`);
      else if (!sameBody) wrong.push(`${r.txnId} (${r.kind}): 200 for another body than the stored one`);
      else if (JSON.stringify(r.answer) !== JSON.stringify(decisionBody(row.txn_id, rowDecision(row)))) wrong.push(`${r.txnId} (${r.kind}): 200 differs from the stored decision`);
    } else if (r.status === 409) {
      if (sameBody) wrong.push(`${r.txnId} (${r.kind}): 409 for the stored body`);
    } else if (r.status === 202) {
      if (row && !sameBody) wrong.push(`${r.txnId} (${r.kind}): 202 for another body than the stored one`);
    } else if (r.status !== 0 && r.status !== 503) {
      wrong.push(`${r.txnId} (${r.kind}): ${r.status}`);
    }
  }
  return wrong;
}

