import { sql, type Kysely } from "kysely";

/**
 * The budget cap (额满即止). A campaign whose budget is below the sum of quota x discount
 * (budget_capped) carries budget_left_fen, drawn by every grant inside the batch transaction
 * that makes it; CHECK (budget_left_fen >= 0) is the last line of defence: never a fen over.
 * Campaigns whose budget covers every voucher are not capped and never touch the counter, so
 * their batches do not all queue on one campaign row.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table campaigns add column budget_capped boolean not null default false`.execute(db);
  await sql`alter table campaigns add column budget_left_fen bigint`.execute(db);
  await sql`update campaigns c set budget_left_fen = c.budget_fen - coalesce(
              (select sum(a.discount_fen) from attempts a where a.campaign_id = c.id and a.status = 'granted'), 0)`.execute(
    db,
  );
  await sql`alter table campaigns alter column budget_left_fen set not null`.execute(db);
  await sql`alter table campaigns add constraint campaigns_budget_left check (budget_left_fen >= 0 and budget_left_fen <= budget_fen)`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table campaigns drop constraint if exists campaigns_budget_left`.execute(db);
  await sql`alter table campaigns drop column if exists budget_left_fen`.execute(db);
  await sql`alter table campaigns drop column if exists budget_capped`.execute(db);
}
