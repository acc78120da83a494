import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * The partition count is part of the data: payers hash onto partitions and
 * stock is split by partition, so every process must agree. The first process
 * to run fixes it; a process configured differently refuses to start.
 */
export async function ensurePartitionCount(db: Kysely<Database>, partitionCount: number): Promise<void> {
  await db
    .insertInto("settings")
    .values({ key: "partition_count", value: String(partitionCount) })
    .onConflict((oc) => oc.doNothing())
    .execute();
  const row = await db
    .selectFrom("settings")
    .select("value")
    .where("key", "=", "partition_count")
    .executeTakeFirstOrThrow();
  if (Number(row.value) !== partitionCount) {
    throw new Error(`QUANTA_PARTITIONS=${partitionCount} but this database was set up with ${row.value} partitions`);
  }
  await sql`insert into partitions (partition) select generate_series(0, ${partitionCount - 1}::int) on conflict do nothing`.execute(
    db,
  );
}
