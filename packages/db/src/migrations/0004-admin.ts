import { sql, type Kysely } from "kysely";

/**
 * Operations during the campaign (issue #7): an activity can be paused (emergency stop; its
 * payments are refused activity_paused until it is resumed), and every admin action leaves an
 * audit record: who, what, on what, when, with the details.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table activities add column paused_at timestamptz`.execute(db);
  await sql`alter table attempts drop constraint attempts_reason`.execute(db);
  await sql`alter table attempts add constraint attempts_reason check (reason is null or reason in
            ('below_threshold', 'merchant_not_eligible', 'outside_window', 'activity_paused',
             'already_redeemed', 'sold_out', 'budget_exhausted'))`.execute(db);
  await sql`create table admin_audit (
              id bigserial primary key,
              at timestamptz not null default clock_timestamp(),
              actor text not null,
              action text not null,
              target text not null,
              details jsonb not null default '{}'::jsonb)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists admin_audit`.execute(db);
  await sql`alter table activities drop column if exists paused_at`.execute(db);
}
