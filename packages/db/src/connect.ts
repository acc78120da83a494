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
   * The server ends a session idle inside a transaction this long (see QUANTA_PG_IDLE_IN_TX_TIMEOUT_MS):
   * a frozen holder of row locks releases them within this, not when its TCP connection dies.
   */
  idleInTransactionTimeoutMs?: number;
  /** TCP keepalive idle time on both ends, and the server's check for a vanished client mid-statement. */
  keepaliveMs?: number;
  /**
   * For the ingress and worker pools, whose every query looks rows up by key:
   * named statements keep one generic plan (cheaper than planning each call),
   * and sequential scans are priced out, so that a plan made while `attempts`
   * was nearly empty still uses the indexes once it holds millions of rows
   * (docs/decisions/0007).
   */
  keyLookupsOnly?: boolean;
  /**
   * pg's pipeline mode: statements issued together leave together without waiting for each
   * other's answers (inPipelinedTransaction sends BEGIN with the first statement and COMMIT with
   * the last). Statements awaited one by one behave as without it (docs/decisions/0009).
   */
  pipeline?: boolean;
}

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

/** Defaults for callers that do not say (tests, the CLI): the services pass their settings. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS_DEFAULT = 5_000;
const KEEPALIVE_MS_DEFAULT = 10_000;

export function connect(options: ConnectOptions): Db {
  const idleInTxMs = options.idleInTransactionTimeoutMs ?? IDLE_IN_TRANSACTION_TIMEOUT_MS_DEFAULT;
  const keepaliveMs = options.keepaliveMs ?? KEEPALIVE_MS_DEFAULT;
  const keepaliveS = Math.max(1, Math.round(keepaliveMs / 1000));
  // Bounds on a peer that froze or vanished (docs/decisions/0013): a session idle inside a
  // transaction is ended by the server, a silent TCP peer is probed after keepaliveS and dropped
  // after 3 missed probes a third of that apart, and a statement whose client vanished is
  // cancelled at the next check instead of running (or waiting for a lock) to its end.
  const bounds = [
    `-c idle_in_transaction_session_timeout=${idleInTxMs}`,
    `-c tcp_keepalives_idle=${keepaliveS}`,
    `-c tcp_keepalives_interval=${Math.max(1, Math.round(keepaliveS / 3))}`,
    "-c tcp_keepalives_count=3",
    `-c client_connection_check_interval=${keepaliveMs}`,
  ].join(" ");
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolMax,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    statement_timeout: options.statementTimeoutMs,
    application_name: options.applicationName,
    pipeline: options.pipeline ?? false,
    keepAlive: true,
    keepAliveInitialDelayMillis: keepaliveMs,
    // Without keyLookupsOnly, named statements are planned per call, so no plan cached while
    // `attempts` was small (a seq scan) outlives the table's growth. jit=off always: quanta's
    // statements are short key lookups, and a priced-out seq scan puts any plan past
    // jit_above_cost, where compiling costs more than running (docs/decisions/0007).
    options: `${options.keyLookupsOnly ? "-c jit=off -c plan_cache_mode=force_generic_plan -c enable_seqscan=off" : "-c jit=off -c plan_cache_mode=force_custom_plan"} ${bounds}`,
  });
  // A pooled client that loses its server raises 'error' on the pool; the
  // query in flight fails and is retried by its caller. Never crash on it.
  pool.on("error", () => undefined);
  // pg-pool listens for errors only on idle clients: a connection terminated while a client is
  // checked out between two statements of a transaction would raise an unhandled 'error' and end
  // the process. The failing statement rejects on its own, and pg-pool drops a client that is no
  // longer queryable on release (docs/decisions/0013).
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
async function withAdmin(
  connectionString: string,
  work: (client: pg.Client, name: string) => Promise<void>,
): Promise<void> {
  const url = new URL(connectionString);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_]{1,63}$/.test(name))
    throw new Error(`database name ${JSON.stringify(name)} must be 1-63 chars of [A-Za-z0-9_]`);
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
  QUANTA_PG_IDLE_IN_TX_TIMEOUT_MS: number;
  QUANTA_PG_KEEPALIVE_MS: number;
}

export function connectFromEnv(env: PoolEnv, applicationName: string): Db {
  return connect({
    connectionString: env.DATABASE_URL,
    poolMax: env.QUANTA_PG_POOL_MAX,
    statementTimeoutMs: env.QUANTA_PG_STATEMENT_TIMEOUT_MS,
    idleInTransactionTimeoutMs: env.QUANTA_PG_IDLE_IN_TX_TIMEOUT_MS,
    keepaliveMs: env.QUANTA_PG_KEEPALIVE_MS,
    applicationName,
    keyLookupsOnly: true,
    pipeline: true,
  });
}
