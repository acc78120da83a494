import { z } from "zod";

/**
 * Every setting, parsed once at start from the environment. Names carry their
 * unit last; every limit has a bound. A bad value stops the process with a
 * message naming the variable.
 */
const int = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);

export const envSchema = z.object({
  DATABASE_URL: z.string().min(1).default("postgres://postgres@127.0.0.1:5432/quanta"),
  /** `redis://host:port` (one Redis), or `redis-cluster://host:port[,host:port…]` (seed nodes of a Redis Cluster). */
  REDIS_URL: z
    .string()
    .min(1)
    .regex(/^(rediss?|redis-cluster):\/\//, "redis://host:port or redis-cluster://host:port[,host:port…]")
    .default("redis://127.0.0.1:6379"),
  /** Every Redis key and BullMQ queue of this deployment lives under this prefix. */
  QUANTA_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .default("quanta"),
  QUANTA_ACQUIRER_SECRETS: z.string().optional(),
  /**
   * `id:secret` (secret at least 32 chars; required by the ingress and `quanta payer-ref`): payer
   * ids are replaced by HMAC pseudonyms under this key before anything is stored, queued or logged.
   * Fixed for as long as campaigns compare payers under it (README: rotation; docs/decisions/0011).
   */
  QUANTA_PAYER_KEY: z.string().optional(),
  PORT: int(0, 65535, 8080),
  QUANTA_WORKER_PORT: int(0, 65535, 9101),
  QUANTA_EXPORTER_PORT: int(0, 65535, 9102),
  QUANTA_ADMIN_PORT: int(0, 65535, 9104),
  /**
   * Admin API bearer tokens, `name:scope=token[,name:scope=token…]` (tokens ≥ 32 chars; scope read,
   * operate or administer, each including the ones before it); never the acquirer secrets. An entry
   * without a scope (`name=token`) may only read. Checked by services/admin/src/tokens.ts.
   */
  QUANTA_ADMIN_TOKENS: z.string().optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  /**
   * Fixed for a deployment: payers hash onto this many partitions (checked against Postgres), one
   * queue and one owner each. As many as the workers you run: each partition costs a queue job per
   * intake batch, and a worker decides all of its partitions in one round anyway
   * (docs/decisions/0002).
   */
  QUANTA_PARTITIONS: int(1, 256, 2),
  /** How long the ingress holds a callback open waiting for its decision before answering 202. */
  QUANTA_DECISION_WAIT_MS: int(0, 30_000, 2_000),
  /** Attempts queued but not yet decided, over all partitions; past it the ingress answers 503. */
  QUANTA_BACKLOG_MAX: int(1, 10_000_000, 50_000),
  /** Callbacks one ingress holds open waiting for their decision; past it the ingress answers 503. */
  QUANTA_INGRESS_HELD_MAX: int(1, 1_000_000, 50_000),
  /** Attempts one ingress holds buffered or being admitted by Redis; past it 503 without touching Redis. */
  QUANTA_INTAKE_PENDING_MAX: int(1, 1_000_000, 50_000),
  /** Ingress group commit into the queue: at most this many attempts per intake batch… */
  QUANTA_INTAKE_BATCH_MAX: int(1, 1_000, 256),
  /**
   * …and batches (one admission, one queue job per partition) leave at most this often: an idle
   * ingress sends at once, a busy one every this many ms. A job costs Redis and the worker about
   * the same whatever it carries, so under load this bounds jobs per second (docs/decisions/0002).
   */
  QUANTA_INTAKE_FLUSH_MS: int(0, 100, 20),
  /**
   * How long the ingress waits for Redis to admit a batch (register txns, reserve room) before it
   * answers 503: a stalled Redis must not hold acquirers' tills. Nothing is queued before that
   * answer, so "nothing was accepted" stays true.
   */
  QUANTA_INTAKE_ADMIT_TIMEOUT_MS: int(50, 30_000, 1_000),
  /** Attempts a worker takes into one round (one Postgres transaction over its partitions). */
  QUANTA_ROUND_ATTEMPTS_MAX: int(1, 5_000, 512),
  /** Decisions an ingress made itself (no stock needed) stored in one Postgres statement. */
  QUANTA_IMMEDIATE_BATCH_MAX: int(1, 5_000, 512),
  /**
   * Group commit window: a worker's rounds, and an ingress's statements of the decisions it makes
   * itself, start at most this often, so under load one commit carries everything that arrived
   * meanwhile (an idle process starts at once). Larger: fewer commits per attempt, up to this much
   * added latency (docs/decisions/0001).
   */
  QUANTA_GROUP_COMMIT_MS: int(0, 100, 15),
  /** Queue jobs a worker holds per partition while it forms a round (BullMQ concurrency). */
  QUANTA_WORKER_JOBS_MAX: int(1, 256, 8),
  /**
   * Times a job may stall (its worker died or froze holding it) before BullMQ fails it. A failed
   * job still owes its attempts a decision: the partition's owner puts failed jobs back in the
   * queue (see packages/owner/src/ownership.ts), so this only bounds how often one job can
   * take a worker down before an operator hears of it (logs, quanta_queue_jobs{state="failed"};
   * docs/decisions/0014).
   */
  QUANTA_WORKER_MAX_STALLED_COUNT: int(0, 1_000, 10),
  /** A partition lease lives this long without renewal; a dead worker's partitions move after it. */
  QUANTA_LEASE_MS: int(1_000, 60_000, 5_000),
  QUANTA_PG_POOL_MAX: int(1, 100, 8),
  QUANTA_PG_STATEMENT_TIMEOUT_MS: int(100, 600_000, 5_000),
  /**
   * A write the ingress answers for (its own decisions, a refund, a queue job) that failed in a
   * way that may have committed (the connection broke with it in flight) is retried this long to
   * learn its outcome before the callback is answered. Still unknown after it: the connection is
   * closed without an answer (never a 5xx, which would say "nothing was accepted"; never a 202
   * that nothing would decide), and the acquirer's resend is answered from what was stored
   * (docs/decisions/0012).
   */
  QUANTA_OUTCOME_SETTLE_MS: int(0, 60_000, 10_000),
  /**
   * Postgres ends a session that sits this long inside a transaction without sending anything
   * (idle_in_transaction_session_timeout). A worker frozen between its round's read and its write
   * (SIGSTOP, a VM pause, a network partition) holds its partition rows FOR UPDATE; without this
   * bound the next owner's claim waits for them as long as the frozen connection lives (hours on
   * default TCP keepalives). A live round is idle inside its transaction for milliseconds
   * (docs/decisions/0013).
   */
  QUANTA_PG_IDLE_IN_TX_TIMEOUT_MS: int(500, 600_000, 5_000),
  /**
   * TCP keepalives of the pool's connections, both ends (the client's socket and the server's
   * tcp_keepalives_*), and Postgres's check for a vanished client during a statement
   * (client_connection_check_interval): a peer gone without a FIN is noticed within about
   * 2 x this, not after the kernel's two hours.
   */
  QUANTA_PG_KEEPALIVE_MS: int(1_000, 600_000, 10_000),
  /**
   * Fault injection for tests, never for production: a worker stops itself (SIGSTOP) between the
   * read and the write of its Nth round, holding that round's row locks, as a frozen owner would.
   * 0: off.
   */
  QUANTA_FAULT_STOP_AFTER_READ_ROUND: int(0, 1_000_000, 0),
  /**
   * How long a queued txnId's body hash is kept in Redis (409 for another body before the
   * decision exists). A backstop: the worker deletes it once the decision is stored.
   */
  QUANTA_TXN_REGISTRY_TTL_S: int(60, 400 * 86_400, 40 * 86_400),
  /**
   * The same for a txn the ingress stores itself (no stock needed): the key is deleted as soon as
   * the decision is stored, so this only bounds what an ingress crash between the two leaves.
   */
  QUANTA_TXN_IN_FLIGHT_TTL_S: int(10, 86_400, 300),
  /** Completed queue jobs kept this long (0: removed at once; decisions live in Postgres). */
  QUANTA_JOB_RETENTION_S: int(0, 7 * 86_400, 0),
  /**
   * On a Redis Cluster, a queue job counts as accepted once this many replicas of its master have
   * it (WAIT), so that a master's death after its acknowledgement loses no acknowledged attempt; a
   * job whose master fails before confirming is added again. 0: the master's word (and its AOF).
   * Not used on a single Redis (docs/decisions/0003).
   */
  QUANTA_REDIS_WAIT_REPLICAS: int(0, 5, 1),
  /** How long the WAIT for those replicas may take before the job is counted unreplicated. */
  QUANTA_REDIS_WAIT_TIMEOUT_MS: int(1, 5_000, 200),
});

export type Env = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Settings that no longer do anything: a process that is given one says so at start. */
export const RETIRED_SETTINGS: Readonly<Record<string, string>> = {
  QUANTA_INGRESS_DECIDES:
    "ingresses never decide attempts that need stock any more: they queue them for the workers (issue #16)",
};

/**
 * Settings under a new name (docs/decisions/0017). For one release the old name still sets each
 * new one that is not set itself, and a process given it says so at start; the next removes it.
 */
export const RENAMED_SETTINGS: Readonly<Record<string, readonly string[]>> = {
  // It set two bounds: a worker's round and an ingress's statement of its own decisions.
  QUANTA_WORKER_BATCH_MAX: ["QUANTA_ROUND_ATTEMPTS_MAX", "QUANTA_IMMEDIATE_BATCH_MAX"],
};

export function parseEnv(source: NodeJS.ProcessEnv = process.env): Env {
  for (const [name, why] of Object.entries(RETIRED_SETTINGS)) {
    if (source[name] !== undefined)
      process.emitWarning(`${name} is ignored: ${why}`, { code: "QUANTA_RETIRED_SETTING" });
  }
  const input: NodeJS.ProcessEnv = { ...source };
  const setAs = new Map<string, string>();
  for (const [old, names] of Object.entries(RENAMED_SETTINGS)) {
    if (source[old] === undefined) continue;
    const unset = names.filter((n) => source[n] === undefined);
    for (const n of unset) {
      input[n] = source[old];
      setAs.set(n, old);
    }
    const applies =
      unset.length > 0 ? `read as ${unset.join(" and ")} until then` : `ignored: ${names.join(" and ")} are set`;
    process.emitWarning(
      `${old} is deprecated and removed in the next release: set ${names.join(" and ")} instead (${applies})`,
      { code: "QUANTA_RENAMED_SETTING" },
    );
  }
  const result = envSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const path = i.path.join(".");
      const old = setAs.get(path);
      return `  - ${path}${old ? ` (given as ${old})` : ""}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  return result.data;
}
