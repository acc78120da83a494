import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { formatFen } from "@quanta/domain";
import { settlementCsv, type DaySettlement, type Settlement, type SettlementAdjustment } from "@quanta/db";
import { table } from "@quanta/loadtest";

/** `quanta settle`: the totals a person reads, and the files the bureau and merchants get. */
export function settlementText(s: Settlement): string {
  const lines = [
    `Settlement of ${s.campaignId} (from the decision records; amounts in CNY)`,
    table(
      ["", "amount"],
      [
        ["budget", formatFen(s.budgetFen)],
        [`granted (${s.grantedVouchers.toLocaleString("en-US")} vouchers)`, formatFen(s.grantedFen)],
        [`refunded (${s.returnedVouchers.toLocaleString("en-US")} vouchers returned)`, formatFen(s.refundedFen)],
        ["net spent", formatFen(s.netSpentFen)],
        ["leftover, returned to the funding bureau", formatFen(s.leftoverFen)],
      ],
    ),
    "",
    `${s.rows.length.toLocaleString("en-US")} merchant-days; the first ones:`,
    table(
      ["day", "merchant", "vouchers", "returned", "net (CNY)"],
      s.rows.slice(0, 10).map((r) => [r.day, r.merchantId, r.vouchers, r.vouchersReturned, formatFen(r.netFen)]),
    ),
  ];
  if (s.adjustments.length > 0)
    lines.push(
      "",
      `${s.adjustments.length.toLocaleString("en-US")} adjustments of settled days; the first ones:`,
      adjustmentTable(s.adjustments.slice(0, 10)),
    );
  return lines.join("\n");
}

/** `quanta settle --day D`: one day's report, its adjustments listed one by one. */
export function settlementDayText(d: DaySettlement): string {
  const lines = [
    `Settlement of ${d.campaignId} for ${d.day} (UTC+8), ${d.closedAt ? `settled at ${d.closedAt}: these figures never change` : "open: the figures may still change"}`,
    table(
      ["", "amount"],
      [
        [`granted (${d.grantedVouchers.toLocaleString("en-US")} vouchers)`, formatFen(d.grantedFen)],
        [`refunded (${d.returnedVouchers.toLocaleString("en-US")} vouchers returned)`, formatFen(d.refundedFen)],
        ["net", formatFen(d.netFen)],
      ],
    ),
    "",
    `${d.rows.length.toLocaleString("en-US")} merchants`,
  ];
  if (d.adjustments.length > 0)
    lines.push(
      "",
      `${d.adjustments.length.toLocaleString("en-US")} adjustments of settled days:`,
      adjustmentTable(d.adjustments),
    );
  return lines.join("\n");
}

function adjustmentTable(adjustments: readonly SettlementAdjustment[]): string {
  return table(
    ["booked on", "adjusts", "merchant", "what", "net (CNY)"],
    adjustments.map((a) => [
      a.day,
      a.adjustsDay,
      a.merchantId,
      a.refundId === null ? `grant ${a.acquirerId}/${a.txnId}` : `refund ${a.acquirerId}/${a.refundId} of ${a.txnId}`,
      formatFen(a.netFen),
    ]),
  );
}

/** Writes settlement-<campaign>.csv and .json, or settlement-<campaign>-<day>.* for one day's report. */
export function writeSettlement(s: Settlement | DaySettlement, dir: string): { csv: string; json: string } {
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  const name = "day" in s ? `settlement-${s.campaignId}-${s.day}` : `settlement-${s.campaignId}`;
  const csv = resolve(out, `${name}.csv`);
  const json = resolve(out, `${name}.json`);
  writeFileSync(csv, settlementCsv(s));
  writeFileSync(json, `${JSON.stringify(s, null, 2)}\n`);
  return { csv, json };
}
