import { sql } from "kysely";
import type { Trx } from "./schema.js";
import { bookedItems } from "./settlement-booking.js";

/**
 * The lines a settlement is made of, read in the caller's transaction: per day and merchant, the
 * vouchers granted and returned and their discounts; per item booked on a later day than its own,
 * an adjustment. The campaign report (settlement.ts) and the day report (settlement-day.ts) both
 * sum these; which day an item is booked on is settlement-booking.ts's.
 */
export interface SettlementRow {
  day: string;
  merchantId: string;
  vouchers: number;
  discountFen: number;
  vouchersReturned: number;
  refundedFen: number;
  netFen: number;
}

/** A grant or returned voucher that came in after its own day was settled, booked on `day`. */
export interface SettlementAdjustment extends SettlementRow {
  /** The settled day it belongs to by its own date (the payment's paidAt, the refund's refundedAt). */
  adjustsDay: string;
  acquirerId: string;
  txnId: string;
  /** The refund that returned the voucher; null: the adjustment is a grant. */
  refundId: string | null;
}

type AmountColumns = { vouchers: string; discount_fen: string; returned: string; refunded_fen: string };

const amounts = (r: AmountColumns) => ({
  vouchers: Number(r.vouchers),
  discountFen: Number(r.discount_fen),
  vouchersReturned: Number(r.returned),
  refundedFen: Number(r.refunded_fen),
  netFen: Number(r.discount_fen) - Number(r.refunded_fen),
});

/** Rows and adjustments booked on `day`, or on every day when it is null. */
export async function booked(
  trx: Trx,
  campaignId: string,
  day: string | null,
): Promise<{ rows: SettlementRow[]; adjustments: SettlementAdjustment[] }> {
  const rows = (
    await sql<AmountColumns & { day: string; merchant_id: string }>`
      with ${bookedItems(campaignId, null)}
      select to_char(day, 'YYYY-MM-DD') as day, merchant_id, sum(vouchers) as vouchers, sum(discount_fen) as discount_fen,
             sum(returned) as returned, sum(refunded_fen) as refunded_fen
        from booked
       where day = own_day and (${day}::date is null or day = ${day}::date)
       group by booked.day, merchant_id
       order by booked.day, merchant_id`.execute(trx)
  ).rows.map((r) => ({ day: r.day, merchantId: r.merchant_id, ...amounts(r) }));
  const adjustments = (
    await sql<
      AmountColumns & {
        day: string;
        own_day: string;
        merchant_id: string;
        acquirer_id: string;
        txn_id: string;
        refund_id: string | null;
      }
    >`
      with ${bookedItems(campaignId, null)}
      select to_char(day, 'YYYY-MM-DD') as day, to_char(own_day, 'YYYY-MM-DD') as own_day, merchant_id, acquirer_id, txn_id, refund_id,
             vouchers, discount_fen, returned, refunded_fen
        from booked
       where day <> own_day and (${day}::date is null or day = ${day}::date)
       order by booked.day, booked.own_day, acquirer_id, txn_id, refund_id nulls first`.execute(trx)
  ).rows.map((r) => ({
    day: r.day,
    merchantId: r.merchant_id,
    ...amounts(r),
    adjustsDay: r.own_day,
    acquirerId: r.acquirer_id,
    txnId: r.txn_id,
    refundId: r.refund_id,
  }));
  return { rows, adjustments };
}

export async function campaignBudget(trx: Trx, campaignId: string): Promise<number> {
  const campaign = await trx
    .selectFrom("campaigns")
    .select(["id", "budget_fen"])
    .where("id", "=", campaignId)
    .executeTakeFirst();
  if (!campaign) throw new Error(`campaign ${campaignId} is not loaded`);
  return Number(campaign.budget_fen);
}

const total = (lines: readonly SettlementRow[], f: (r: SettlementRow) => number) => lines.reduce((n, r) => n + f(r), 0);

/** What a set of booked lines adds up to: the same sums for the campaign and for one day. */
export function lineSums(lines: readonly SettlementRow[]) {
  return {
    grantedVouchers: total(lines, (r) => r.vouchers),
    grantedFen: total(lines, (r) => r.discountFen),
    returnedVouchers: total(lines, (r) => r.vouchersReturned),
    refundedFen: total(lines, (r) => r.refundedFen),
    netFen: total(lines, (r) => r.netFen),
  };
}
