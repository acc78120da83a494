import { createHash } from "node:crypto";
import { sql } from "kysely";
import type { Db } from "@quanta/db";
import { tierReport, waitUntilDecided } from "@quanta/db";
import { countBy, type CallbackClient } from "@quanta/loadtest";

/**
 * The days after the opening minute, compressed: refunds of a share of the granted payments,
 * then new payers who claim the vouchers the refunds returned.
 *
 * Inputs: the running stack (a client), the campaign, the share of grants to refund and a seed
 * (the same seed picks the same payments). Each chosen payment gets one of three refunds, in
 * turn: full (the voucher returns), partial keeping the payment at its tier's threshold (the
 * voucher stays), partial one fen past it (the voucher returns). Every refund is sent twice (the
 * second is an acquirer's retry and must get the same answer); one refund of an unknown payment
 * and one refund above a payment's amount check the error answers. Then one new payer per
 * returned voucher pays at the same merchant and amount as the refunded payment, plus a fifth
 * more at the top amount, so every returned voucher is claimed again.
 * Trade-off: refunds are dated over 2020-09-14..20 (settlement by day shows them) but sent now,
 * after the rush has drained, not interleaved with it: the race of refunds and the rush is
 * proven by the refund-race test, this phase shows the figures at the seed's scale.
 */
export interface RefundPhaseResult extends RefundFigures {
  /** Payments refunded (each refund sent twice). */
  chosen: number;
  remainingAfter: number;
  problems: string[];
  /** When the first refund was sent and when the last reclaim payment was decided (ms since the epoch). */
  startedAtMs: number;
  endedAtMs: number;
}

/** What the phase counted, as the report's counts take it over (rush-counts.ts). */
export interface RefundFigures {
  /** Refund requests sent: each chosen payment's refund twice, plus the error probes. */
  requests: number;
  /** Answers to those requests by status and body, retries included (they sum to `requests`). */
  answers: Record<string, number>;
  returned: number;
  kept: number;
  reclaimSent: number;
  reclaimGranted: number;
}

/** The running stack (a client and the database), the campaign, the share to refund and the seed that picks it. */
export interface RefundPhaseInput {
  client: CallbackClient;
  db: Db;
  acquirerId: string;
  campaignId: string;
  share: number;
  seed: number;
  out: (line: string) => void;
}

type Kind = "full" | "keep" | "cross";
const KINDS: readonly Kind[] = ["full", "keep", "cross"];

interface Granted {
  txn_id: string;
  amount_fen: number;
  merchant_id: string;
  threshold_fen: number;
}
interface Plan {
  g: Granted;
  kind: Kind;
  refundId: string;
  body: string;
}

export async function refundPhase(input: RefundPhaseInput): Promise<RefundPhaseResult> {
  const { client, db, acquirerId, campaignId, out } = input;
  const startedAtMs = Date.now();
  const problems: string[] = [];
  const remainingBefore = await remainingStock(db, campaignId);
  const plans = await planRefunds(input);
  const sent = await sendRefunds(client, plans, problems);
  const answers = [...sent.answers, ...(await probeRefundErrors(client, plans, problems))];
  out(`  refunds answered: ${[...countBy(answers, (a) => a)].map(([k, n]) => `${k} ${n}`).join(", ")}`);
  const reclaim = await reclaimReturned(client, db, acquirerId, plans, problems);
  const remainingAfter = await remainingStock(db, campaignId);
  // After a sold-out rush, the returned vouchers are the only stock: all of it must be claimed again.
  if (remainingBefore === 0 && reclaim.granted !== sent.returned)
    problems.push(`${sent.returned} vouchers returned, ${reclaim.granted} granted again`);
  if (remainingBefore === 0 && remainingAfter !== 0)
    problems.push(`${remainingAfter} vouchers left in stock after the reclaim wave (stranded?)`);
  out(
    `  reclaim: ${reclaim.sent} new payers, ${reclaim.granted} granted the ${sent.returned} returned vouchers; ${remainingAfter} left in stock`,
  );
  return {
    chosen: plans.length,
    requests: answers.length,
    answers: Object.fromEntries(countBy(answers, (a) => a)),
    returned: sent.returned,
    kept: sent.kept,
    reclaimSent: reclaim.sent,
    reclaimGranted: reclaim.granted,
    remainingAfter,
    problems,
    startedAtMs,
    endedAtMs: Date.now(),
  };
}

async function remainingStock(db: Db, campaignId: string): Promise<number> {
  return (await tierReport(db.kysely, campaignId)).reduce((n, t) => n + t.remaining, 0);
}

/** The seed's share of the granted payments, each with its kind of refund and a day of the following week. */
async function planRefunds({ db, acquirerId, campaignId, share, seed, out }: RefundPhaseInput): Promise<Plan[]> {
  const granted = (
    await sql<Granted>`
      select a.txn_id, a.amount_fen, a.merchant_id, t.threshold_fen
        from attempts a join tiers t on t.campaign_id = a.campaign_id and t.id = a.tier_id
       where a.campaign_id = ${campaignId} and a.acquirer_id = ${acquirerId} and a.status = 'granted' and a.voucher_returned_at is null
       order by a.txn_id`.execute(db.kysely)
  ).rows;
  const pick = (txnId: string) =>
    createHash("sha256").update(`${seed}/${txnId}`).digest().readUInt32BE(0) / 2 ** 32 < share;
  const chosen = granted.filter((g) => pick(g.txn_id));
  out(
    `  refunds: ${chosen.length.toLocaleString("en-US")} of ${granted.length.toLocaleString("en-US")} granted payments (share ${share})`,
  );
  return chosen.map((g, i) => {
    const amount = Number(g.amount_fen);
    const slack = amount - Number(g.threshold_fen);
    let kind = KINDS[i % KINDS.length]!;
    if (kind !== "full" && slack < 1) kind = "full";
    const refundFen = kind === "full" ? amount : kind === "keep" ? slack : slack + 1;
    const day = 14 + (i % 7);
    return {
      g,
      kind,
      refundId: `rf-${g.txn_id}`,
      body: JSON.stringify({
        refundId: `rf-${g.txn_id}`,
        txnId: g.txn_id,
        amountFen: refundFen,
        refundedAt: `2020-09-${day}T1${i % 10}:00:00+08:00`,
      }),
    };
  });
}

const answerKey = (status: number, body: unknown) => {
  const b = body as { status?: string; error?: { code?: string } };
  return status === 200 ? `200 ${b.status}` : `${status} ${b.error?.code}`;
};

/** Each refund twice (the second an acquirer's retry, which must get the same answer); every answer counted. */
async function sendRefunds(client: CallbackClient, plans: readonly Plan[], problems: string[]) {
  const answers: string[] = [];
  let returned = 0;
  let kept = 0;
  for (let i = 0; i < plans.length; i += 64) {
    await Promise.all(
      plans.slice(i, i + 64).map(async (p) => {
        const first = await client.postRefund(p.body);
        const retry = await client.postRefund(p.body);
        answers.push(answerKey(first.status, first.body), answerKey(retry.status, retry.body));
        const body = first.body as { status?: string };
        const expected = p.kind === "keep" ? "voucher_kept" : "voucher_returned";
        if (first.status !== 200 || body.status !== expected)
          problems.push(`refund ${p.refundId} (${p.kind}): ${first.status} ${JSON.stringify(first.body)}`);
        if (JSON.stringify(retry.body) !== JSON.stringify(first.body))
          problems.push(
            `refund ${p.refundId} retried: ${JSON.stringify(retry.body)} after ${JSON.stringify(first.body)}`,
          );
        if (body.status === "voucher_returned") returned++;
        if (body.status === "voucher_kept") kept++;
      }),
    );
  }
  return { answers, returned, kept };
}

/** The error answers: a refund of an unknown payment (404), and one above a payment's amount (422). */
async function probeRefundErrors(client: CallbackClient, plans: readonly Plan[], problems: string[]) {
  const answers: string[] = [];
  const unknown = await client.postRefund(
    JSON.stringify({
      refundId: "rf-unknown",
      txnId: "no-such-payment",
      amountFen: 100,
      refundedAt: "2020-09-15T10:00:00+08:00",
    }),
  );
  answers.push(answerKey(unknown.status, unknown.body));
  if (unknown.status !== 404)
    problems.push(`refund of an unknown payment: ${unknown.status} ${JSON.stringify(unknown.body)}`);
  const keptOne = plans.find((p) => p.kind === "keep");
  if (keptOne) {
    const over = await client.postRefund(
      JSON.stringify({
        refundId: "rf-over",
        txnId: keptOne.g.txn_id,
        amountFen: Number(keptOne.g.amount_fen),
        refundedAt: "2020-09-15T10:00:00+08:00",
      }),
    );
    answers.push(answerKey(over.status, over.body));
    if (over.status !== 422)
      problems.push(`refund above the payment's amount: ${over.status} ${JSON.stringify(over.body)}`);
  }
  return answers;
}

/** New payers claim the returned vouchers: one per voucher at the refunded payment's merchant and amount, and a fifth more at the top. */
async function reclaimReturned(
  client: CallbackClient,
  db: Db,
  acquirerId: string,
  plans: readonly Plan[],
  problems: string[],
): Promise<{ sent: number; granted: number }> {
  const returnedPlans = plans.filter((p) => p.kind !== "keep");
  const extra = Math.ceil(returnedPlans.length / 5);
  const reclaims = [
    ...returnedPlans.map((p, i) => ({
      txnId: `reclaim-${i}`,
      payerId: `reclaim-payer-${i}`,
      merchantId: p.g.merchant_id,
      amountFen: Number(p.g.amount_fen),
    })),
    ...Array.from({ length: extra }, (_, i) => ({
      txnId: `reclaim-top-${i}`,
      payerId: `reclaim-top-${i}`,
      merchantId: i % 2 ? "M-FLAGSHIP" : "M-0001",
      amountFen: 250_000,
    })),
  ];
  let granted = 0;
  const pending: { acquirerId: string; txnId: string }[] = [];
  for (let i = 0; i < reclaims.length; i += 64) {
    await Promise.all(
      reclaims.slice(i, i + 64).map(async (r) => {
        const a = await client.postPayment(JSON.stringify({ ...r, paidAt: "2020-09-21T10:00:00+08:00" }));
        if (a.status === 202) pending.push({ acquirerId, txnId: r.txnId });
        else if (a.status !== 200) problems.push(`reclaim ${r.txnId}: ${a.status} ${JSON.stringify(a.body)}`);
        if ((a.body as { status?: string }).status === "granted") granted++;
      }),
    );
  }
  const undecided = await waitUntilDecided(db.kysely, pending, { timeoutMs: 60_000, pollMs: 500 });
  if (undecided.length > 0) problems.push(`${undecided.length} reclaim payments undecided`);
  if (pending.length > 0) {
    granted += Number(
      (
        await sql<{
          n: string;
        }>`select count(*) as n from attempts where acquirer_id = ${acquirerId} and txn_id = any(${pending.map((p) => p.txnId)}::text[]) and status = 'granted'`.execute(
          db.kysely,
        )
      ).rows[0]!.n,
    );
  }
  return { sent: reclaims.length, granted };
}
