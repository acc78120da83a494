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
export interface RefundPhaseResult {
  chosen: number;
  answers: Record<string, number>;
  returned: number;
  kept: number;
  reclaimSent: number;
  reclaimGranted: number;
  remainingAfter: number;
  problems: string[];
}

type Kind = "full" | "keep" | "cross";
const KINDS: readonly Kind[] = ["full", "keep", "cross"];

export async function refundPhase(
  client: CallbackClient,
  db: Db,
  acquirerId: string,
  campaignId: string,
  share: number,
  seed: number,
  out: (line: string) => void,
): Promise<RefundPhaseResult> {
  const problems: string[] = [];
  const remainingBefore = (await tierReport(db.kysely, campaignId)).reduce((n, t) => n + t.remaining, 0);
  const granted = (
    await sql<{ txn_id: string; amount_fen: number; merchant_id: string; threshold_fen: number }>`
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

  const plans = chosen.map((g, i) => {
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
  const answers: string[] = [];
  let returned = 0;
  let kept = 0;
  for (let i = 0; i < plans.length; i += 64) {
    await Promise.all(
      plans.slice(i, i + 64).map(async (p) => {
        const first = await client.postRefund(p.body);
        const retry = await client.postRefund(p.body);
        const body = first.body as { status?: string; error?: { code?: string } };
        answers.push(first.status === 200 ? `200 ${body.status}` : `${first.status} ${body.error?.code}`);
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
  const unknown = await client.postRefund(
    JSON.stringify({
      refundId: "rf-unknown",
      txnId: "no-such-payment",
      amountFen: 100,
      refundedAt: "2020-09-15T10:00:00+08:00",
    }),
  );
  answers.push(`${unknown.status} ${(unknown.body as { error?: { code?: string } }).error?.code}`);
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
    answers.push(`${over.status} ${(over.body as { error?: { code?: string } }).error?.code}`);
    if (over.status !== 422)
      problems.push(`refund above the payment's amount: ${over.status} ${JSON.stringify(over.body)}`);
  }
  out(`  refunds answered: ${[...countBy(answers, (a) => a)].map(([k, n]) => `${k} ${n}`).join(", ")}`);

  // New payers claim the returned vouchers: one per voucher at the refunded payment's merchant and amount, and a fifth more at the top.
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
  let reclaimGranted = 0;
  const pending: { acquirerId: string; txnId: string }[] = [];
  for (let i = 0; i < reclaims.length; i += 64) {
    await Promise.all(
      reclaims.slice(i, i + 64).map(async (r) => {
        const a = await client.postPayment(JSON.stringify({ ...r, paidAt: "2020-09-21T10:00:00+08:00" }));
        if (a.status === 202) pending.push({ acquirerId, txnId: r.txnId });
        else if (a.status !== 200) problems.push(`reclaim ${r.txnId}: ${a.status} ${JSON.stringify(a.body)}`);
        if ((a.body as { status?: string }).status === "granted") reclaimGranted++;
      }),
    );
  }
  const undecided = await waitUntilDecided(db.kysely, pending, { timeoutMs: 60_000, pollMs: 500 });
  if (undecided.length > 0) problems.push(`${undecided.length} reclaim payments undecided`);
  if (pending.length > 0) {
    reclaimGranted += Number(
      (
        await sql<{
          n: string;
        }>`select count(*) as n from attempts where acquirer_id = ${acquirerId} and txn_id = any(${pending.map((p) => p.txnId)}::text[]) and status = 'granted'`.execute(
          db.kysely,
        )
      ).rows[0]!.n,
    );
  }
  const remainingAfter = (await tierReport(db.kysely, campaignId)).reduce((n, t) => n + t.remaining, 0);
  // After a sold-out rush, the returned vouchers are the only stock: all of it must be claimed again.
  if (remainingBefore === 0 && reclaimGranted !== returned)
    problems.push(`${returned} vouchers returned, ${reclaimGranted} granted again`);
  if (remainingBefore === 0 && remainingAfter !== 0)
    problems.push(`${remainingAfter} vouchers left in stock after the reclaim wave (stranded?)`);
  out(
    `  reclaim: ${reclaims.length} new payers, ${reclaimGranted} granted the ${returned} returned vouchers; ${remainingAfter} left in stock`,
  );
  return {
    chosen: chosen.length,
    answers: Object.fromEntries(countBy(answers, (a) => a)),
    returned,
    kept,
    reclaimSent: reclaims.length,
    reclaimGranted,
    remainingAfter,
    problems,
  };
}
