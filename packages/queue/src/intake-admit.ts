import { bySlot, hashTag, type QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

/** How an attempt enters the intake: queued for a worker, stored by the ingress (no stock needed), or a repeat queued again. */
export type AdmitMode = "queue" | "immediate" | "requeue";

/** What admission said of one attempt. */
export type AdmitCode = "first" | "repeat" | "conflict" | "requeued" | "overloaded";

const MODE_ARG: Record<AdmitMode, string> = { queue: "q", immediate: "i", requeue: "r" };
const CODES: Record<number, AdmitCode> = { 1: "first", 2: "repeat", 3: "conflict", 4: "requeued" };

export interface AdmitEntry {
  acquirerId: string;
  txnId: string;
  bodyHash: string;
  mode: AdmitMode;
  /** The payer's partition: the queue, and the backlog, the attempt takes room in. */
  partition: number;
}

export interface AdmitLimits {
  /** Attempts queued and not yet decided, per partition (QUANTA_BACKLOG_MAX / partitions). */
  backlogMaxPerPartition: number;
  /** TTL of a queued attempt's registration (a backstop: its worker deletes it once decided). */
  ttlS: number;
  /** TTL of the registration of an attempt the ingress stores itself; it deletes it once stored. */
  immediateTtlS: number;
}

/**
 * Admits a batch in three steps. (1) Reserve backlog room per partition for every attempt that
 * may be queued (backlog-reserve.lua: all or nothing per partition; one call per partition on a
 * cluster, one in all on a single Redis). (2) Register the first body of every txn whose attempt
 * has room or needs none (intake-register.lua, one call per registry shard on a cluster); an
 * attempt of a full partition is "overloaded" and registers nothing. (3) Give back the room of
 * attempts that turned out not to be queued (repeats, conflicts).
 *
 * Room before registration: a registration is never withdrawn because a partition was full, so
 * no other body is ever answered 409 against a body that is then refused (the two steps are not
 * one script: the registry, by txn, and the backlog, by partition, live in different slots;
 * docs/decisions/0010).
 * Trade-off: the reservation counts repeats until step 3, so a partition at its bound can refuse
 * a batch that would just have fitted. When a call fails, what the others did is taken back
 * (room given back, first registrations deleted) before the error reaches the caller: a batch
 * refused for an error leaves nothing behind.
 */
export async function admitBatch(
  redis: QuantaRedis,
  prefix: string,
  entries: readonly AdmitEntry[],
  limits: AdmitLimits,
): Promise<{ codes: AdmitCode[] }> {
  const codes = new Array<AdmitCode>(entries.length);
  const indexed = entries.map((e, i) => ({ e, i, key: keys.txn(prefix, e.acquirerId, e.txnId) }));
  const mayQueue = (x: (typeof indexed)[number]) => x.e.mode !== "immediate";

  // (1) Room for every attempt that may be queued.
  const want = new Map<number, number>();
  for (const x of indexed) if (mayQueue(x)) want.set(x.e.partition, (want.get(x.e.partition) ?? 0) + 1);
  const reserved = new Map<number, number>();
  const full = new Set<number>();
  const reservations = await Promise.allSettled(
    bySlot(redis, [...want.keys()], (p) => hashTag(keys.backlog(prefix, p))).map(async (group) => {
      const reply = await redis.backlogReserve(
        group.length,
        ...group.map((p) => keys.backlog(prefix, p)),
        limits.backlogMaxPerPartition,
        ...group.map((p) => want.get(p)!),
      );
      group.forEach((p, j) => (Number(reply[j]) < 0 ? full.add(p) : reserved.set(p, want.get(p)!)));
    }),
  );
  const reserveFailed = reservations.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (reserveFailed) {
    await giveBack(redis, prefix, reserved);
    throw reserveFailed.reason;
  }

  // (2) Registrations, for what has room or needs none.
  const refused = (x: (typeof indexed)[number]) => mayQueue(x) && full.has(x.e.partition);
  const toRegister = indexed.filter((x) => !refused(x));
  for (const x of indexed) if (refused(x)) codes[x.i] = "overloaded";
  const registrations = await Promise.allSettled(
    bySlot(redis, toRegister, (x) => hashTag(x.key)).map(async (group) => {
      const args: (string | number)[] = [group.length, ...group.map((x) => x.key), limits.ttlS, limits.immediateTtlS];
      for (const x of group) args.push(x.e.bodyHash, MODE_ARG[x.e.mode]);
      const reply = await redis.intakeRegister(...args);
      if (reply.length !== group.length)
        throw new Error(`intake-register answered ${reply.length} codes for ${group.length} attempts`);
      group.forEach((x, j) => {
        const code = CODES[Number(reply[j])];
        if (!code) throw new Error(`intake-register gave unknown code ${reply[j]}`);
        codes[x.i] = code;
      });
    }),
  );
  const registerFailed = registrations.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (registerFailed) {
    await Promise.allSettled([
      giveBack(redis, prefix, reserved),
      deleteKeys(
        redis,
        toRegister.filter((x) => codes[x.i] === "first").map((x) => x.key),
      ),
    ]);
    throw registerFailed.reason;
  }

  // (3) Room of what is not queued after all (a repeat, a conflict) goes back.
  const surplus = new Map(reserved);
  for (const x of indexed) {
    if (mayQueue(x) && reserved.has(x.e.partition) && (codes[x.i] === "first" || codes[x.i] === "requeued"))
      surplus.set(x.e.partition, surplus.get(x.e.partition)! - 1);
  }
  // Best effort: room left reserved is taken back by the workers' idle-time reset.
  await giveBack(redis, prefix, surplus).catch(() => undefined);
  return { codes };
}

/** DECRBY of reserved room, per partition (one command each: each counter in its own slot). */
async function giveBack(redis: QuantaRedis, prefix: string, room: ReadonlyMap<number, number>): Promise<void> {
  await Promise.all([...room].filter(([, n]) => n > 0).map(([p, n]) => redis.decrby(keys.backlog(prefix, p), n)));
}

/**
 * Forgets txn registrations: of attempts not accepted after all (their add failed), and of
 * attempts decided (their decision is stored: Postgres answers for the txn from then on, whatever
 * body a later copy carries, so the key goes whichever body it names).
 */
export async function forgetTxns(
  redis: QuantaRedis,
  prefix: string,
  txns: readonly { acquirerId: string; txnId: string }[],
): Promise<void> {
  await deleteKeys(
    redis,
    txns.map((t) => keys.txn(prefix, t.acquirerId, t.txnId)),
  );
}

/** DEL of many keys: one command on a single Redis, one per slot on a cluster. */
export async function deleteKeys(redis: QuantaRedis, ks: readonly string[]): Promise<void> {
  await Promise.all(bySlot(redis, ks, hashTag).map((group) => redis.del(...group)));
}
