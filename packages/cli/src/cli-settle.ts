import {
  closeSettlementDay,
  connect,
  isSettlementDay,
  settlement,
  settlementDay,
  type DaySettlement,
  type Settlement,
} from "@quanta/db";
import { settlementDayText, settlementText, writeSettlement } from "./settle.js";
import { UsageError, type CommandInput } from "./cli-args.js";
import { withCommandDatabase } from "./cli-database.js";

type Db = ReturnType<typeof connect>["kysely"];

/**
 * `quanta settle --campaign ID [--day YYYY-MM-DD [--close]] [--out DIR]`: the campaign's settlement,
 * or one day's, printed and written to DIR. Exit 1 when --close is asked of a day not over yet.
 */
export async function settleCommand({ values, env }: CommandInput): Promise<number> {
  if (!values.campaign) throw new UsageError("settle needs --campaign ID");
  if (values.close && values.day === undefined)
    throw new UsageError("settle --close needs --day YYYY-MM-DD: the day to settle");
  if (values.day !== undefined && !isSettlementDay(values.day))
    throw new UsageError(`--day must be a day as YYYY-MM-DD, got ${values.day}`);
  const campaign = values.campaign;
  return withCommandDatabase(env, "quanta-settle", async (db) => {
    const s = await report(db.kysely, campaign, values.day, values.close ?? false);
    if (s === undefined) return 1;
    const files = writeSettlement(s, values.out ?? "settlement");
    console.log("day" in s ? settlementDayText(s) : settlementText(s));
    console.log(`\nwritten: ${files.csv}\n         ${files.json}`);
    return 0;
  });
}

/** The report asked for; undefined (and why, on stderr) when the day to close is not over. */
async function report(
  db: Db,
  campaignId: string,
  day: string | undefined,
  close: boolean,
): Promise<Settlement | DaySettlement | undefined> {
  if (day === undefined) return settlement(db, campaignId);
  if (!close) return settlementDay(db, campaignId, day);
  const closed = await closeSettlementDay(db, campaignId, day);
  if (closed.kind === "not_over") {
    console.error(`${day} is not over until ${closed.endsAt}: nothing was settled`);
    return undefined;
  }
  if (closed.kind === "already_settled") console.log(`${day} was settled before; its report as it was settled:\n`);
  return closed.report;
}
