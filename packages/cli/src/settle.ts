import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { formatFen } from "@quanta/domain";
import { settlementCsv, type Settlement } from "@quanta/db";
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
  return lines.join("\n");
}

export function writeSettlement(s: Settlement, dir: string): { csv: string; json: string } {
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  const csv = resolve(out, `settlement-${s.campaignId}.csv`);
  const json = resolve(out, `settlement-${s.campaignId}.json`);
  writeFileSync(csv, settlementCsv(s));
  writeFileSync(json, `${JSON.stringify(s, null, 2)}\n`);
  return { csv, json };
}
