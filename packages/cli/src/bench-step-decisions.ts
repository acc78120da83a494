import { sql } from "kysely";
import { connect, findAttempts, inversionWindowMs, verifyDatabaseInvariants } from "@quanta/db";
import type { SentRecord } from "@quanta/loadtest";
import { answersAgainstStore, copiesAgainstFirst } from "./answer-checks.js";

/**
 * A step's figures from the decisions stored (not for the floor, which stores none): decision
 * latency and rate, when the last voucher went, the inversion window, and the invariants: I1, I2,
 * I6 and the budget from the database, I3 from the acknowledged attempts still undecided, I4 from
 * the answers the load generator received.
 */
export async function decisionFigures(
  db: ReturnType<typeof connect>,
  campaignId: string,
  startedAtMs: number,
  missing: string[],
  acknowledged: number,
  records: readonly SentRecord[],
  acquirerId: string,
) {
  const lat = await sql<{ p50: number | null; p99: number | null; n: string; last: Date | null }>`
    select percentile_cont(0.5) within group (order by ms) as p50, percentile_cont(0.99) within group (order by ms) as p99,
           count(*) as n, max(decided_at) as last
      from (select extract(epoch from decided_at - received_at) * 1000 as ms, decided_at from attempts
             where received_at >= ${new Date(startedAtMs)}) d`.execute(db.kysely);
  const granted = await sql<{ n: string; last: Date | null }>`
    select count(*) as n, max(decided_at) as last from attempts where status = 'granted' and campaign_id = ${campaignId}`.execute(
    db.kysely,
  );
  const quota = await sql<{ q: string }>`select sum(quota) as q from tiers where campaign_id = ${campaignId}`.execute(
    db.kysely,
  );
  const problems = await invariantProblems(db, campaignId, missing, acknowledged, records, acquirerId);
  const l = lat.rows[0]!;
  const g = granted.rows[0]!;
  const lastMs = l.last ? new Date(l.last).getTime() : startedAtMs;
  return {
    decisionMs: { p50: l.p50 ?? Number.NaN, p99: l.p99 ?? Number.NaN },
    decidedPerS: Number(l.n) / Math.max(0.001, (lastMs - startedAtMs) / 1000),
    allGrantedS:
      Number(g.n) === Number(quota.rows[0]!.q) && g.last ? (new Date(g.last).getTime() - startedAtMs) / 1000 : null,
    inversionMs: await inversionWindowMs(db.kysely, campaignId),
    invariantsOk: problems.length === 0,
    invariantProblems: problems,
  };
}

/** What a step broke, one line per invariant; none when every one held. */
async function invariantProblems(
  db: ReturnType<typeof connect>,
  campaignId: string,
  missing: string[],
  acknowledged: number,
  records: readonly SentRecord[],
  acquirerId: string,
): Promise<string[]> {
  const checks = await verifyDatabaseInvariants(db.kysely, campaignId);
  const problems = checks.filter((c) => !c.ok).map((c) => `${c.id}: ${c.detail}`);
  if (missing.length > 0) problems.push(`I3: ${missing.length} of ${acknowledged} acknowledged attempts undecided`);
  // I4 from the answers: each against the stored decision and against its txn's first answer, and
  // evidence that resends and other bodies were sent and answered (200 as before, 409).
  const rows = await findAttempts(
    db.kysely,
    [...new Set(records.map((r) => r.txnId))].map((txnId) => ({ acquirerId, txnId })),
  );
  const copies = copiesAgainstFirst(records);
  const wrong = [...answersAgainstStore(records, rows), ...copies.wrong];
  if (wrong.length > 0) problems.push(`I4: ${wrong.length} answers disagree (${wrong.slice(0, 2).join("; ")})`);
  if (records.some((r) => r.kind === "resend") && copies.resendsAnswered === 0)
    problems.push("I4: resends were sent and none was answered 200");
  if (records.some((r) => r.kind === "conflict") && copies.conflicts409 === 0)
    problems.push("I4: other bodies were sent and none was answered 409");
  return problems;
}
