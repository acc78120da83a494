import { sql, type Kysely } from "kysely";

/**
 * Issue #19: a campaign may declare which loaded campaigns it wins over where their windows and
 * merchants overlap (campaign file `overrides`); an overlap it does not declare is refused at
 * load. Kept on the campaign's row so that every process orders campaigns the same way.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table campaigns add column overrides text[] not null default '{}'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table campaigns drop column if exists overrides`.execute(db);
}
