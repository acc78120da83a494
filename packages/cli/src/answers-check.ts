import { decisionBody } from "@quanta/contract";
import { findAttempts, rowDecision, type Database, type InvariantCheck } from "@quanta/db";
import type { Kysely } from "kysely";

/** One answer as an acquirer received it: the HTTP status and the parsed body. */
export interface ReceivedAnswer {
  acquirerId: string;
  txnId: string;
  status: number;
  answer: unknown;
}

export const isAcknowledged = (a: ReceivedAnswer): boolean => a.status === 200 || a.status === 202;

/** Key order differs between serializers; the contract promises a value, not a spelling. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "undefined";
}

/**
 * I4 from the acquirer's side: every 200 answer equals the answer the stored decision gives
 * (decisionBody of the one row stored for its txn), however often and whenever it was sent. A 202
 * carries no decision to compare (whether it was decided once is I3's). Only the database's
 * answer is compared, never the answers with each other: all of them equal to one stored row is
 * the same answer every time. No 200 answers at all fails: nothing was compared.
 */
export async function checkAnswers(db: Kysely<Database>, answers: readonly ReceivedAnswer[]): Promise<InvariantCheck> {
  const decided = answers.filter((a) => a.status === 200);
  const pending = answers.filter((a) => a.status === 202).length;
  if (decided.length === 0)
    return {
      id: "I4",
      ok: false,
      detail: `no 200 answers to compare with the stored decisions (${pending} answered 202)`,
    };
  const keys = [
    ...new Map(
      decided.map((a) => [`${a.acquirerId}/${a.txnId}`, { acquirerId: a.acquirerId, txnId: a.txnId }]),
    ).values(),
  ];
  const stored = new Map<string, string[]>();
  for (let i = 0; i < keys.length; i += 10_000) {
    for (const row of await findAttempts(db, keys.slice(i, i + 10_000))) {
      const key = `${row.acquirer_id}/${row.txn_id}`;
      stored.set(key, [...(stored.get(key) ?? []), canonicalJson(decisionBody(row.txn_id, rowDecision(row)))]);
    }
  }
  let differing = 0;
  // One example per txn: a txn answered many times would otherwise fill the line with copies.
  const examples = new Map<string, string>();
  for (const a of decided) {
    const key = `${a.acquirerId}/${a.txnId}`;
    const bodies = stored.get(key) ?? [];
    const answered = canonicalJson(a.answer);
    const wrong =
      bodies.length === 0
        ? `${key}: answered ${answered}, nothing stored`
        : bodies.length > 1
          ? `${key}: answered ${answered}, ${bodies.length} stored decisions (${bodies.join(" and ")})`
          : bodies[0] !== answered
            ? `${key}: answered ${answered}, stored ${bodies[0]}`
            : undefined;
    if (wrong === undefined) continue;
    differing += 1;
    if (!examples.has(key)) examples.set(key, wrong);
  }
  const n = decided.length.toLocaleString("en-US");
  return differing === 0
    ? {
        id: "I4",
        ok: true,
        detail: `${n} answers 200 for ${keys.length.toLocaleString("en-US")} txns, each equal to the stored decision (${pending} answered 202: nothing to compare)`,
      }
    : {
        id: "I4",
        ok: false,
        detail: `${differing} of ${n} answers 200 (${examples.size} txns) differ from the stored decision, e.g. ${[...examples.values()].slice(0, 2).join("; ")}`,
      };
}
