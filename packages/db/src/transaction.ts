import type pg from "pg";

/**
 * BEGIN … COMMIT on one pooled client, ROLLBACK on any error. A client whose
 * connection broke is destroyed rather than returned to the pool.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return onTransactionClient(pool, async (client, at) => {
    at.state = "open"; // before BEGIN leaves: a BEGIN that fails is rolled back (and its broken client destroyed)
    await client.query("begin");
    return work(client);
  });
}

/**
 * A transaction of the hot path, whose BEGIN leaves with its first statement and whose COMMIT
 * leaves with its last one (pg's pipeline mode, when the pool's clients have it: one write and
 * one round trip for each pair, so a round of read, decide in memory, write costs two round
 * trips instead of four; docs/decisions/0009). On a client without pipeline mode the pairs run
 * one after the other.
 *
 * States: open (after begin) -> committed (commit resolved with COMMIT) | rolled back (any error;
 * a write that failed turns the COMMIT sent with it into a rollback, and Postgres answers it
 * ROLLBACK, which is checked). Trade-off: the last statement's rows are only seen after the
 * COMMIT left, so whatever must be checked before committing goes in the statements before it.
 */
export interface PipelinedTx {
  readonly client: pg.PoolClient;
  /** The first statement, sent with BEGIN. */
  begin<R extends pg.QueryResultRow>(query: pg.QueryConfig): Promise<pg.QueryResult<R>>;
  /** The last statement, sent with COMMIT; resolves once both are done and the commit is known. */
  commit<R extends pg.QueryResultRow>(query: pg.QueryConfig): Promise<pg.QueryResult<R>>;
}

export async function inPipelinedTransaction<T>(pool: pg.Pool, work: (tx: PipelinedTx) => Promise<T>): Promise<T> {
  return onTransactionClient(pool, (client, at) => work(pipelinedTx(client, at)));
}

interface TxState {
  state: "new" | "open" | "committed";
}

function pipelinedTx(client: pg.PoolClient, at: TxState): PipelinedTx {
  return {
    client,
    begin: async <R extends pg.QueryResultRow>(query: pg.QueryConfig) => {
      if (at.state !== "new") throw new Error("begin called twice on a pipelined transaction");
      at.state = "open";
      const [, first] = await pipelined(client, [{ text: "begin" }, query]);
      return first as pg.QueryResult<R>;
    },
    commit: async <R extends pg.QueryResultRow>(query: pg.QueryConfig) => {
      if (at.state !== "open") throw new Error("commit called on a pipelined transaction not begun");
      const [last, done] = await pipelined(client, [query, { text: "commit" }]);
      if (done!.command !== "COMMIT")
        throw new Error(`COMMIT was answered ${done!.command}: the transaction was rolled back`);
      at.state = "committed";
      return last as pg.QueryResult<R>;
    },
  };
}

/**
 * One pooled client for a transaction that work opens: committed at the end if work left it open,
 * rolled back on any error; a client whose connection broke is destroyed, not returned.
 */
async function onTransactionClient<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient, at: TxState) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const at: TxState = { state: "new" };
  try {
    const result = await work(client, at);
    if (at.state === "open") {
      await client.query("commit");
      at.state = "committed";
    }
    return result;
  } catch (error) {
    if (at.state === "open") {
      try {
        await client.query("rollback");
      } catch (rollbackError) {
        broken = rollbackError as Error;
      }
    }
    throw error;
  } finally {
    client.release(broken);
  }
}

/**
 * Sends statements back to back in one socket write (the stream is corked around them) and waits
 * for all; the first failure is thrown once every one has settled, so none is left running.
 */
async function pipelined(client: pg.PoolClient, queries: readonly pg.QueryConfig[]): Promise<pg.QueryResult[]> {
  const stream = (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } })
    .connection?.stream;
  stream?.cork?.();
  let pending: Promise<pg.QueryResult>[];
  try {
    pending = queries.map((q) => client.query(q));
  } finally {
    stream?.uncork?.();
  }
  const settled = await Promise.allSettled(pending);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<pg.QueryResult>).value);
}
