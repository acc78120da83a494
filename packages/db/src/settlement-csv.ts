import { formatFen } from "@quanta/domain";
import type { Settlement } from "./settlement.js";
import type { SettlementRow } from "./settlement-lines.js";

/**
 * RFC 4180 CSV, amounts in fen (integers) and in CNY (two decimals) for people: each day's
 * merchant rows, then its adjustments, which also fill the last four columns (the settled day
 * adjusted, and the payment or refund: refund_id empty for a grant).
 */
export function settlementCsv(s: Pick<Settlement, "rows" | "adjustments">): string {
  const cny = (fen: number) => formatFen(fen, { grouped: false });
  const field = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const amountsOf = (r: SettlementRow) => [
    r.vouchers,
    r.discountFen,
    r.vouchersReturned,
    r.refundedFen,
    r.netFen,
    cny(r.netFen),
  ];
  const lines = [
    "day,merchant_id,vouchers,discount_fen,vouchers_returned,refunded_fen,net_fen,net_cny,adjusts_day,acquirer_id,txn_id,refund_id",
  ];
  const byDay = new Map<string, string[]>();
  const add = (day: string, line: string) => {
    const dayLines = byDay.get(day);
    if (dayLines) dayLines.push(line);
    else byDay.set(day, [line]);
  };
  for (const r of s.rows) add(r.day, [r.day, field(r.merchantId), ...amountsOf(r), "", "", "", ""].join(","));
  for (const a of s.adjustments) {
    add(
      a.day,
      [
        a.day,
        field(a.merchantId),
        ...amountsOf(a),
        a.adjustsDay,
        field(a.acquirerId),
        field(a.txnId),
        field(a.refundId ?? ""),
      ].join(","),
    );
  }
  for (const day of [...byDay.keys()].sort()) for (const line of byDay.get(day)!) lines.push(line);
  return `${lines.join("\r\n")}\r\n`;
}
