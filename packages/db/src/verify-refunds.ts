import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";
import type { InvariantCheck } from "./verify.js";

/**
 * Refunds: every returned voucher has exactly one refund that returned it, every returning refund
 * left its payment's voucher returned, and no payment is refunded above its amount.
 */
export async function checkRefunds(db: Kysely<Database>, campaignId: string): Promise<InvariantCheck> {
  const rc = await refundCounts(db, campaignId);
  const problems = [
    [rc.returnedWithout, "vouchers returned without exactly one returning refund"],
    [rc.returnsWithout, "returning refunds whose payment still holds its voucher"],
    [rc.overRefunded, "payments refunded above their amount"],
  ] as const;
  const found = problems.filter(([n]) => n > 0);
  return {
    id: "refunds",
    ok: found.length === 0,
    detail:
      found.length > 0
        ? found.map(([n, what]) => `${n} ${what}`).join("; ")
        : `${rc.refunds} refunds: each returned voucher returned once, no payment refunded above its amount`,
  };
}

async function refundCounts(db: Kysely<Database>, campaignId: string) {
  const refundCheck = await sql<{
    returned_without: string;
    returns_without: string;
    over_refunded: string;
    refunds: string;
  }>`
    with campaign_refunds as materialized (
      select r.outcome, r.amount_fen, a.acquirer_id, a.txn_id, a.amount_fen as paid, a.voucher_returned_at
        from refunds r join attempts a on a.acquirer_id = r.acquirer_id and a.txn_id = r.txn_id
       where a.campaign_id = ${campaignId})
    select (select count(*) from attempts a where a.campaign_id = ${campaignId} and a.voucher_returned_at is not null
               and (select count(*) from refunds r where r.acquirer_id = a.acquirer_id and r.txn_id = a.txn_id and r.outcome = 'voucher_returned') <> 1)
             as returned_without,
           (select count(*) from campaign_refunds where outcome = 'voucher_returned' and voucher_returned_at is null) as returns_without,
           (select count(*) from (select 1 from campaign_refunds group by acquirer_id, txn_id having sum(amount_fen) > max(paid)) x) as over_refunded,
           (select count(*) from campaign_refunds) as refunds`.execute(db);
  const rc = refundCheck.rows[0]!;
  return {
    returnedWithout: Number(rc.returned_without),
    returnsWithout: Number(rc.returns_without),
    overRefunded: Number(rc.over_refunded),
    refunds: Number(rc.refunds),
  };
}
