import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Database } from "./schema.js";

// bigint (int8) columns hold fen and epochs, all far below 2^53: read them as numbers.
pg.types.setTypeParser(20, (v) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 ${v} is not a safe integer`);
  return n;
});

export interface ConnectOptions {
  connectionString: string;
  /** Connections this process may hold; every service sets it explicitly. */
  poolMax: number;
  statementTimeoutMs: number;
  applicationName: string;
  /**
   * For the ingress and worker pools, whose every query looks rows up by key:
   * named statements keep one generic plan (planning the batch statements
   * per call cost more Postgres CPU than running them), and sequential scans
   * are priced out, so that a plan made while `attempts` was nearly empty
   * still uses the indexes once it holds millions of rows.
   */
  keyLookupsOnly?: boolean;
  /**
   * pg's pipeline mode: statements issued together leave together without waiting for each
   * other's answers (inPipelinedTransaction sends BEGIN with the first statement and COMMIT with
   * the last). Statements awaited one by one behave as without it.
   */
  pipeline?: boolean;
}

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

export function connect(options: ConnectOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolMax,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    statement_timeout: options.statementTimeoutMs,
    application_name: options.applicationName,
    pipeline: options.pipeline ?? false,
    // Without keyLookupsOnly, named statements are planned per call: a generic plan cached while
    // `attempts` was empty (seq scan) stayed in use as the table grew, at 10-20 ms a lookup.
    // jit=off always: quanta's statements are short key lookups, and a plan priced past
    // jit_above_cost (any plan with a priced-out seq scan is) spent ~28 ms of CPU compiling.
    options: options.keyLookupsOnly
      ? "-c jit=off -c plan_cache_mode=force_generic_plan -c enable_seqscan=off"
      : "-c jit=off -c plan_cache_mode=force_custom_plan",
  });
  // A pooled client that loses its server raises 'error' on the pool; the
  // query in flight fails and is retried by its caller. Never crash on it.
  pool.on("error", () => undefined);
  // pg-pool listens for errors only on idle clients: a connection terminated while a client is
  // checked out between two statements of a transaction raised an unhandled 'error' and killed
  // the process (seen with pg_terminate_backend in the fault suite). The failing statement
  // rejects on its own, and pg-pool drops a client that is no longer queryable on release.
  pool.on("connect", (client) => {
    client.on("error", () => undefined);
  });
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kysely,
    pool,
    close: async () => {
      await kysely.destroy();
      // Kysely ends the pool only if it ever used it: a Db used only through `pool` (a worker's
      // rounds, a test's) would keep its connections open until the process exits.
      if (!pool.ending) await pool.end();
    },
  };
}

/**
 * Runs work on the server's maintenance database with the target database's
 * name, checked to be a plain identifier (it is interpolated into DDL).
 */
async function withAdmin(connectionString: string, work: (client: pg.Client, name: string) => Promise<void>): Promise<void> {
  const url = new URL(connectionString);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_]{1,63}$/.test(name)) throw new Error(`database name ${JSON.stringify(name)} must be 1-63 chars of [A-Za-z0-9_]`);
  url.pathname = "/postgres";
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await work(client, name);
  } finally {
    await client.end();
  }
}

/** Creates a database if missing (for tests, the rush and fresh deployments). */
export async function ensureDatabase(connectionString: string): Promise<void> {
  await withAdmin(connectionString, async (client, name) => {
    const found = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (found.rowCount !== 0) return;
    try {
      await client.query(`create database "${name}"`);
    } catch (error) {
      if ((error as { code?: string }).code !== "42P04") throw error; // created concurrently
    }
  });
}

export async function dropDatabase(connectionString: string): Promise<void> {
  await withAdmin(connectionString, async (client, name) => {
    await client.query(`drop database if exists "${name}" with (force)`);
  });
}

/** The pool settings every service takes from its environment (see packages/config). */
export interface PoolEnv {
  DATABASE_URL: string;
  QUANTA_PG_POOL_MAX: number;
  QUANTA_PG_STATEMENT_TIMEOUT_MS: number;
}

export function connectFromEnv(env: PoolEnv, applicationName: string): Db {
  return connect({
    connectionString: env.DATABASE_URL,
    poolMax: env.QUANTA_PG_POOL_MAX,
    statementTimeoutMs: env.QUANTA_PG_STATEMENT_TIMEOUT_MS,
    applicationName,
    keyLookupsOnly: true,
    pipeline: true,
  });
}
