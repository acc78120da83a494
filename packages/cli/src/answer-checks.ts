import { decisionBody } from "@quanta/contract";
import { rowDecision, type DecisionRow } from "@quanta/db";
import type { SentRecord } from "@quanta/loadtest";

/**
 * Every answer the client got, against the decision stored for its txn: a 200 carries the stored
 * decision for the stored body; a copy with another body (the generator's conflicts differ in the
 * amount) gets 409, or no acceptance at all (no answer, 503), never a decision; a copy of the
 * stored body never gets 409. Returns the answers that break this, for the caller to assert empty.
 */
export function answersAgainstStore(
  records: readonly SentRecord[],
  rows: readonly (DecisionRow & { amount_fen: number })[],
): string[] {
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
      else if (JSON.stringify(r.answer) !== JSON.stringify(decisionBody(row.txn_id, rowDecision(row))))
        wrong.push(`${r.txnId} (${r.kind}): 200 differs from the stored decision`);
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

/** What copies of a txn were answered, against each other (no store needed): see copiesAgainstFirst. */
export interface CopyChecks {
  /** Resends (copies of a body sent before) answered 200. */
  resendsAnswered: number;
  /** Copies with another body answered 409. */
  conflicts409: number;
  /** Answers that break the rules, for the caller to assert empty. */
  wrong: string[];
}

/**
 * I4 as an acquirer sees it, from the answers alone: every 200 to a copy of a body equals the first
 * 200 that body got (a resend gets its first answer), and a copy with another body sent after the
 * first body was acknowledged (200 or 202) is never accepted: 409, or nothing accepted (503, no
 * answer). The counts let a harness assert that it did send resends and conflicts and saw them
 * answered, so that a run without them cannot pass for one that checked them.
 */
export function copiesAgainstFirst(records: readonly SentRecord[]): CopyChecks {
  const byTxn = new Map<string, SentRecord[]>();
  for (const r of records) {
    if (r.kind === "forged") continue;
    const list = byTxn.get(r.txnId);
    if (list) list.push(r);
    else byTxn.set(r.txnId, [r]);
  }
  const wrong: string[] = [];
  let resendsAnswered = 0;
  let conflicts409 = 0;
  for (const [txnId, copies] of byTxn) {
    copies.sort((a, b) => a.sentAtMs - b.sentAtMs);
    const amountOf = (r: SentRecord) => (JSON.parse(r.body) as { amountFen: number }).amountFen;
    const firstAnswer = new Map<number, string>();
    let firstAckAtMs = Number.POSITIVE_INFINITY;
    const original = copies.find((r) => r.kind !== "conflict");
    for (const r of copies) {
      const amount = amountOf(r);
      if (r.kind === "conflict") continue;
      if (original && amount === amountOf(original) && (r.status === 200 || r.status === 202))
        firstAckAtMs = Math.min(firstAckAtMs, r.sentAtMs + r.ackMs);
      if (r.status !== 200) continue;
      const answer = JSON.stringify(r.answer);
      const first = firstAnswer.get(amount);
      if (first === undefined) firstAnswer.set(amount, answer);
      else if (first !== answer) wrong.push(`${txnId} (${r.kind}): 200 ${answer} after a first 200 ${first}`);
      if (r.kind === "resend") resendsAnswered++;
    }
    for (const r of copies) {
      if (r.kind !== "conflict") continue;
      if (r.status === 409) conflicts409++;
      const acceptedBefore = r.sentAtMs >= firstAckAtMs;
      if (acceptedBefore && r.status !== 409 && r.status !== 503 && r.status !== 0) {
        wrong.push(`${txnId} (conflict): ${r.status} for another body, sent after the first body was acknowledged`);
      }
    }
  }
  return { resendsAnswered, conflicts409, wrong };
}
