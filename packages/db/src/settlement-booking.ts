import { sql, type RawBuilder } from "kysely";

/**
 * The day each settlement item is booked on: common table expressions for `with`, the last
 * one named `booked`.
 *
 * Items: every grant of the campaign (its discount), and every refund that returned a voucher
 * (that discount back). Each has its own day on the campaign's clock (UTC+8): a grant's paidAt,
 * a refund's refundedAt; and an arrival day: when the grant was decided (decided_at) or the
 * refund received (received_at), both by this database's clock, never by the acquirer's.
 * An item is booked on
 *   1. the day a close booked it (settled_entries), for good;
 *   2. else its own day, while that day is not settled;
 *   3. else (it came in for a day already settled) its arrival day, or, when that day is settled
 *      too, the first day after it that is not: an adjustment on that day's report.
 * So an item without an entry is never booked on a settled day, and a settled day's report
 * holds exactly its entries, whatever arrives later. `closing`: the day a close is booking,
 * taken as not settled yet (its row is written in the same transaction).
 * Columns of `booked`: acquirer_id, txn_id, refund_id (null: a grant), merchant_id, own_day,
 * day, vouchers, discount_fen, returned, refunded_fen.
 * Trade-off: a report of one day books the campaign's every item to find that day's: one scan
 * of its grants and refunds, once a day, instead of a booking column written on the hot path.
 */
export function bookedItems(campaignId: string, closing: string | null): RawBuilder<unknown> {
  return sql`
    settled as (
      select day from settled_days where campaign_id = ${campaignId} and day is distinct from ${closing}::date),
    items as (
      select a.acquirer_id, a.txn_id, null::text as refund_id, a.merchant_id,
             (a.paid_at at time zone 'Asia/Shanghai')::date as own_day,
             (a.decided_at at time zone 'Asia/Shanghai')::date as arrival_day,
             e.day as entry_day, 1 as vouchers, a.discount_fen, 0 as returned, 0::bigint as refunded_fen
        from attempts a
        left join settled_entries e on e.acquirer_id = a.acquirer_id and e.txn_id = a.txn_id and e.refund_id is null
       where a.campaign_id = ${campaignId} and a.status = 'granted'
      union all
      select r.acquirer_id, r.txn_id, r.refund_id, a.merchant_id,
             (r.refunded_at at time zone 'Asia/Shanghai')::date,
             (r.received_at at time zone 'Asia/Shanghai')::date,
             e.day, 0, 0::bigint, 1, a.discount_fen
        from refunds r
        join attempts a on a.acquirer_id = r.acquirer_id and a.txn_id = r.txn_id
        left join settled_entries e on e.acquirer_id = r.acquirer_id and e.refund_id = r.refund_id
       where a.campaign_id = ${campaignId} and r.outcome = 'voucher_returned'),
    booked as (
      select i.acquirer_id, i.txn_id, i.refund_id, i.merchant_id, i.own_day, i.entry_day,
             coalesce(i.entry_day,
               case when i.own_day not in (select day from settled) then i.own_day
                    when i.arrival_day not in (select day from settled) then i.arrival_day
                    else (select min(s.day + 1) from settled s
                           where s.day >= i.arrival_day and s.day + 1 not in (select day from settled)) end) as day,
             i.vouchers, i.discount_fen, i.returned, i.refunded_fen
        from items i)`;
}
