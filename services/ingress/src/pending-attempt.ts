/**
 * An attempt held by the Intake from submit until its caller has an answer, and the steps that
 * sort a batch of them once Redis has admitted it. No Redis or Postgres here: the Intake does the
 * talking.
 */
import { attemptKey, type DecisionRow } from "@quanta/db";
import type { AdmitCode, AdmitMode } from "@quanta/queue";
import type { IntakeEntry, IntakeResult } from "./intake-types.js";

export interface Pending {
  entry: IntakeEntry;
  requeue: boolean;
  /** What admission said (set once admitted). */
  code?: AdmitCode;
  resolve: (r: IntakeResult) => void;
  reject: (e: unknown) => void;
}

export const keyOf = (e: IntakeEntry) => attemptKey(e.attempt.acquirerId, e.attempt.payment.txnId);
export const txnOf = (p: Pending) => ({ acquirerId: p.entry.attempt.acquirerId, txnId: p.entry.attempt.payment.txnId });

export function byPartition(ps: readonly Pending[]): Map<number, Pending[]> {
  const groups = new Map<number, Pending[]>();
  for (const p of ps) {
    const group = groups.get(p.entry.attempt.partition);
    if (group) group.push(p);
    else groups.set(p.entry.attempt.partition, [p]);
  }
  return groups;
}

/** A txn's stored decision answers this attempt: its own body gets the decision, another body 409. */
export function answerFromRow(p: Pending, row: DecisionRow): IntakeResult {
  return row.body_hash === p.entry.attempt.bodyHash ? { kind: "stored", row } : { kind: "conflict" };
}

export function modeOf(p: Pending): AdmitMode {
  if (p.entry.immediate) return "immediate";
  return p.requeue ? "requeue" : "queue";
}

/**
 * Where each admitted attempt goes by its admission code: refused (overloaded: 503 unless
 * Postgres holds the txn's decision), queued or stored (first sightings and requeues), or looked
 * up in Postgres (repeats, and conflicts, where a stored decision has the last word).
 */
export function sortAdmitted(batch: readonly Pending[]) {
  const toQueue: Pending[] = [];
  const toStore: Pending[] = [];
  const toLookUp: Pending[] = [];
  const toRefuse: Pending[] = [];
  const conflicts = new Set<Pending>();
  for (const p of batch) {
    if (p.code === "overloaded") toRefuse.push(p);
    else if (p.code === "conflict" || p.code === "repeat") {
      if (p.code === "conflict") conflicts.add(p);
      toLookUp.push(p);
    } else (p.entry.immediate ? toStore : toQueue).push(p);
  }
  return { toQueue, toStore, toLookUp, toRefuse, conflicts };
}
