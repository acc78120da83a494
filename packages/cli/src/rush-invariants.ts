import { checkAcknowledged, findAttempts, verifyDatabaseInvariants, type InvariantCheck } from "@quanta/db";
import { answersAgainstStore, copiesAgainstFirst } from "./answer-checks.js";
import { n } from "./rush-text.js";
import type { RefundPhaseResult } from "./rush-refunds.js";
import type { FactsInput } from "./rush-facts.js";

/**
 * The rush's verdict: the database's invariants, the refund phase's, I3, I4 and I5 from what the
 * acquirers were answered, and Postgres's deadlock count, each with its evidence in words.
 */
type Check = Omit<InvariantCheck, "id"> & { id: InvariantCheck["id"] | "deadlocks" };

/** The database's invariants, the refund phase, I3, I4 and I5 from the answers, then deadlocks. */
export async function invariantChecks(input: FactsInput): Promise<Check[]> {
  const checks: Check[] = await verifyDatabaseInvariants(input.db.kysely, input.campaignId);
  if (input.refunds) checks.push(refundPhaseCheck(input.refunds));
  // Counted after the drain (waitUntilDecided only waited for each to exist): none missing, none twice.
  checks.push(await checkAcknowledged(input.db.kysely, input.acked));
  checks.push(await sameAnswerCheck(input));
  checks.push(await forgedCheck(input));
  checks.sort((a, b) => a.id.localeCompare(b.id));
  // Not an invariant, but the lock order's promise: rounds, refills and refunds never wait in a cycle.
  checks.push({
    id: "deadlocks",
    ok: input.deadlocks === 0,
    detail: `${input.deadlocks} deadlocks detected by Postgres in the run's database (${input.owners.length} workers: ${input.owners.map((o) => `[${o.partitions.join(",")}]`).join(" ")})`,
  });
  return checks;
}

function refundPhaseCheck(r: RefundPhaseResult): Check {
  return {
    id: "refund-phase",
    ok: r.problems.length === 0,
    detail:
      r.problems.length === 0
        ? "every refund answered as expected and the same on retry; every returned voucher granted again"
        : `${r.problems.length} problems, e.g. ${r.problems.slice(0, 3).join("; ")}`,
  };
}

/** I4: every answer against the stored decision (a 200 equals it, a resend got it, another body 409) and GET. */
async function sameAnswerCheck(input: FactsInput): Promise<Check> {
  const { records, getChecks } = input;
  const sentTxns = [...new Set(records.map((r) => r.txnId))].map((txnId) => ({ acquirerId: input.acquirerId, txnId }));
  const copies = copiesAgainstFirst(records);
  const disagreeing = [...answersAgainstStore(records, await findAttempts(input.db.kysely, sentTxns)), ...copies.wrong];
  // Evidence, not just the absence of counter-examples: a run that sent resends and other bodies
  // must have seen resends answered and other bodies refused 409.
  const evidenceMissing = [
    ...(records.some((r) => r.kind === "resend") && copies.resendsAnswered === 0 ? ["no resend was answered 200"] : []),
    ...(records.some((r) => r.kind === "conflict") && copies.conflicts409 === 0
      ? ["no other body was answered 409"]
      : []),
  ];
  const sample = (xs: string[]) => (xs.length ? ` (${xs.slice(0, 2).join("; ")})` : "");
  return {
    id: "I4",
    ok: disagreeing.length === 0 && evidenceMissing.length === 0 && getChecks.mismatches.length === 0,
    detail:
      `every answer against the stored decision and against the txn's first answer (${n(copies.resendsAnswered)} resends answered as the first time, ${n(copies.conflicts409)} other bodies answered 409): ` +
      `${disagreeing.length} disagree${sample(disagreeing)}; ` +
      `${evidenceMissing.length ? `${evidenceMissing.join(", ")}; ` : ""}` +
      `${n(getChecks.asked)} GETs: ${getChecks.mismatches.length} mismatches${sample(getChecks.mismatches)}`,
  };
}

/** I5: no forged callback accepted or stored. */
async function forgedCheck(input: FactsInput): Promise<Check> {
  const forged = input.records.filter((r) => r.kind === "forged");
  const accepted = forged.filter((r) => r.status !== 401);
  const stored = await findAttempts(
    input.db.kysely,
    forged.map((r) => ({ acquirerId: input.acquirerId, txnId: r.txnId })),
  );
  return {
    id: "I5",
    ok: accepted.length === 0 && stored.length === 0,
    detail: `${n(forged.length)} forged callbacks: ${n(forged.length - accepted.length)} answered 401, ${stored.length} stored`,
  };
}
