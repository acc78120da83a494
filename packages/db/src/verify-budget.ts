import { sql, type Kysely } from "kysely";
import { formatFen } from "@quanta/domain";
import type { Database } from "./schema.js";
import type { InvariantCheck } from "./verify.js";

/** A campaign's budget and what its grants hold of it, as one read answers them. */
interface BudgetFigures {
  budget_fen: number | null;
  budget_capped: boolean;
  budget_left_fen: number;
  spent_fen: string | null;
  grants_without_discount: string;
}

/**
 * The budget: the discounts held (granted net of refunds) stay within it, every grant carries
 * its tier's discount, and a capped campaign's counter agrees with its grants.
 */
export async function checkBudget(db: Kysely<Database>, campaignId: string): Promise<InvariantCheck> {
  const b = await budgetFigures(db, campaignId);
  if (b === undefined) return { id: "budget", ok: false, detail: `campaign ${campaignId} not found` };
  const spentFen = Number(b.spent_fen ?? 0);
  const wrongDiscount = Number(b.grants_without_discount);
  // A capped campaign's counter must agree with its grants net of returns: budget left + spent = budget.
  const counterOff = b.budget_capped && Number(b.budget_left_fen) + spentFen !== Number(b.budget_fen);
  return {
    id: "budget",
    ok: b.budget_fen !== null && spentFen <= b.budget_fen && wrongDiscount === 0 && !counterOff,
    detail:
      `discounts held (granted net of refunds) ${cny(spentFen)} of a ${cny(Number(b.budget_fen))} CNY budget` +
      (b.budget_capped
        ? ` (capped: ${cny(Number(b.budget_left_fen))} CNY left${counterOff ? ", which does not match the grants" : ""})`
        : "") +
      `; ${wrongDiscount} grants whose discount differs from their tier's`,
  };
}

async function budgetFigures(db: Kysely<Database>, campaignId: string): Promise<BudgetFigures | undefined> {
  const spent = await sql<BudgetFigures>`
    select c.budget_fen, c.budget_capped, c.budget_left_fen,
           (select sum(a.discount_fen) from attempts a where a.campaign_id = c.id and a.status = 'granted' and a.voucher_returned_at is null) as spent_fen,
           (select count(*) from attempts a where a.campaign_id = c.id and a.status = 'granted'
               and a.discount_fen is distinct from (select t.discount_fen from tiers t where t.campaign_id = a.campaign_id and t.id = a.tier_id))
             as grants_without_discount
      from campaigns c where c.id = ${campaignId}`.execute(db);
  return spent.rows[0];
}

const cny = (fen: number) => formatFen(fen, { grouped: false });
