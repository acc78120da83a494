import { readFileSync } from "node:fs";
import type { ReceivedAnswer } from "./answers-check.js";

/**
 * The records `quanta verify` checks I3 and I4 against: what acquirers were answered, kept on
 * their side (quanta keeps no durable record of its acknowledgements apart from the decisions).
 *   --acknowledged FILE  one "acquirerId/txnId" per line (blank lines and # comments skipped);
 *   --answers FILE       JSON lines, one per answer received:
 *                        {"acquirerId": "...", "txnId": "...", "status": 200, "answer": {...}}
 *                        other fields are ignored, so a rush SentRecord with its acquirerId fits.
 * Reading returns a value: the entries, or what is wrong with the file, line by line.
 */
export type FileRead<T> = { ok: true; entries: T[] } | { ok: false; problem: string };

const ANSWER_SHAPE = `{"acquirerId": string, "txnId": string, "status": HTTP status, "answer": body}`;

function lines(path: string): { ok: true; lines: string[] } | { ok: false; problem: string } {
  try {
    return { ok: true, lines: readFileSync(path, "utf8").split("\n") };
  } catch (error) {
    return { ok: false, problem: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
  }
}

function problems(path: string, bad: string[], expected: string): { ok: false; problem: string } {
  const more = bad.length > 5 ? ` (and ${bad.length - 5} more lines)` : "";
  return { ok: false, problem: `${path}: expected ${expected} on every line; ${bad.slice(0, 5).join("; ")}${more}` };
}

export function readAcknowledgedFile(path: string): FileRead<{ acquirerId: string; txnId: string }> {
  const read = lines(path);
  if (!read.ok) return read;
  const entries: { acquirerId: string; txnId: string }[] = [];
  const bad: string[] = [];
  for (const [i, raw] of read.lines.entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const slash = line.indexOf("/");
    if (slash <= 0 || slash === line.length - 1) bad.push(`line ${i + 1} is ${JSON.stringify(line.slice(0, 40))}`);
    else entries.push({ acquirerId: line.slice(0, slash), txnId: line.slice(slash + 1) });
  }
  return bad.length > 0 ? problems(path, bad, `"acquirerId/txnId"`) : { ok: true, entries };
}

export function readAnswersFile(path: string): FileRead<ReceivedAnswer> {
  const read = lines(path);
  if (!read.ok) return read;
  const entries: ReceivedAnswer[] = [];
  const bad: string[] = [];
  for (const [i, raw] of read.lines.entries()) {
    if (raw.trim() === "") continue;
    const wrong = (what: string) => bad.push(`line ${i + 1}: ${what}`);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      wrong("not JSON");
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      wrong("not a JSON object");
      continue;
    }
    const r = value as Record<string, unknown>;
    if (typeof r.acquirerId !== "string" || r.acquirerId === "") wrong("no acquirerId");
    else if (typeof r.txnId !== "string" || r.txnId === "") wrong("no txnId");
    else if (typeof r.status !== "number" || !Number.isInteger(r.status) || r.status < 100 || r.status > 599)
      wrong("no HTTP status");
    else if (!("answer" in r)) wrong("no answer");
    else if (r.status === 200 && (r.answer === null || typeof r.answer !== "object"))
      wrong("a 200 whose answer is not a JSON object");
    else entries.push({ acquirerId: r.acquirerId, txnId: r.txnId, status: r.status, answer: r.answer });
  }
  return bad.length > 0 ? problems(path, bad, ANSWER_SHAPE) : { ok: true, entries };
}
