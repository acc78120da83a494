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
 * Admits a batch: registers the first body of every txn (intake-register.lua, one call per
 * registry shard on a cluster, one in all on a single Redis), then reserves backlog room per
 * partition for the attempts that will be queued (backlog-reserve.lua, likewise). Attempts of a
 * partition that is full are "overloaded", their registrations taken back, and so is any copy
 * in the batch that was judged against such a registration (it was judged against nothing).
 *
 * States of an entry: registered (first | repeat | conflict | requeued) -> room reserved, or
 * overloaded (registration undone). Trade-off: two round trips where one script did it on a
 * single Redis; the registry (by txn) and the backlog (by partition) live in different slots.
 */
export async function admitBatch(redis: QuantaRedis, prefix: string, entries: readonly AdmitEntry[], limits: AdmitLimits): Promise<{ codes: AdmitCode[] }> {
  const codes = new Array<AdmitCode>(entries.length);
  const indexed = entries.map((e, i) => ({ e, i, key: keys.txn(prefix, e.acquirerId, e.txnId) }));
  await Promise.all(
    bySlot(redis, indexed, (x) => hashTag(x.key)).map(async (group) => {
      const args: (string | number)[] = [group.length, ...group.map((x) => x.key), limits.ttlS, limits.immediateTtlS];
      for (const x of group) args.push(x.e.bodyHash, MODE_ARG[x.e.mode]);
      const reply = await redis.intakeRegister(...args);
      if (reply.length !== group.length) throw new Error(`intake-register answered ${reply.length} codes for ${group.length} attempts`);
      group.forEach((x, j) => {
        const code = CODES[Number(reply[j])];
        if (!code) throw new Error(`intake-register gave unknown code ${reply[j]}`);
        codes[x.i] = code;
      });
    }),
  );

  const needsRoom = (x: (typeof indexed)[number]) => x.e.mode !== "immediate" && (codes[x.i] === "first" || codes[x.i] === "requeued");
  const want = new Map<number, number>();
  for (const x of indexed) if (needsRoom(x)) want.set(x.e.partition, (want.get(x.e.partition) ?? 0) + 1);
  const partitions = [...want.keys()];
  const full = new Set<number>();
  await Promise.all(
    bySlot(redis, partitions, (p) => hashTag(keys.backlog(prefix, p))).map(async (group) => {
      const reply = await redis.backlogReserve(group.length, ...group.map((p) => keys.backlog(prefix, p)), limits.backlogMaxPerPartition, ...group.map((p) => want.get(p)!));
      group.forEach((p, j) => {
        if (Number(reply[j]) < 0) full.add(p);
      });
    }),
  );
  if (full.size === 0) return { codes };

  const undone = new Set<string>();
  for (const x of indexed) {
    if (!full.has(x.e.partition) || !needsRoom(x)) continue;
    if (codes[x.i] === "first") undone.add(x.key);
    codes[x.i] = "overloaded";
  }
  // A copy judged against a registration just undone was judged against nothing.
  for (const x of indexed) if (undone.has(x.key)) codes[x.i] = "overloaded";
  await deleteKeys(redis, [...undone]);
  return { codes };
}

/**
 * Forgets txn registrations: of attempts not accepted after all (their add failed), and of
 * attempts decided (their decision is stored: Postgres answers for the txn from then on, whatever
 * body a later copy carries, so the key goes whichever body it names).
 */
export async function forgetTxns(redis: QuantaRedis, prefix: string, txns: readonly { acquirerId: string; txnId: string }[]): Promise<void> {
  await deleteKeys(redis, txns.map((t) => keys.txn(prefix, t.acquirerId, t.txnId)));
}

/** DEL of many keys: one command on a single Redis, one per slot on a cluster. */
export async function deleteKeys(redis: QuantaRedis, ks: readonly string[]): Promise<void> {
  await Promise.all(bySlot(redis, ks, hashTag).map((group) => redis.del(...group)));
}
