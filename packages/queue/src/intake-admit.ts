import type { QuantaRedis } from "./redis.js";
import { keys } from "./keys.js";

/** How an attempt enters the intake: queued for a worker, stored by the ingress (no stock needed), or a repeat queued again. */
export type AdmitMode = "queue" | "immediate" | "requeue";

/** What intake-admit.lua said of one attempt. */
export type AdmitCode = "first" | "repeat" | "conflict" | "requeued" | "overloaded";

const MODE_ARG: Record<AdmitMode, string> = { queue: "q", immediate: "i", requeue: "r" };
const CODES: Record<number, AdmitCode> = { 1: "first", 2: "repeat", 3: "conflict", 4: "requeued", 5: "overloaded" };

export interface AdmitEntry {
  acquirerId: string;
  txnId: string;
  bodyHash: string;
  mode: AdmitMode;
}

/** Registers first sightings and reserves backlog room for a whole batch in one round trip. */
export async function admitBatch(
  redis: QuantaRedis,
  prefix: string,
  entries: readonly AdmitEntry[],
  backlogMax: number,
  /** TTL of a queued attempt's registration (a backstop: its worker deletes it once decided). */
  ttlS: number,
  /** TTL of the registration of an attempt the ingress stores itself; it deletes it once stored. */
  immediateTtlS: number,
): Promise<{ backlog: number; codes: AdmitCode[] }> {
  const args: (string | number)[] = [entries.length + 1, keys.backlog(prefix)];
  for (const e of entries) args.push(keys.txn(prefix, e.acquirerId, e.txnId));
  args.push(backlogMax, ttlS, immediateTtlS);
  for (const e of entries) args.push(e.bodyHash, MODE_ARG[e.mode]);
  const reply = (await redis.intakeAdmit(...args)) as number[];
  if (reply.length !== entries.length + 1) throw new Error(`intake-admit answered ${reply.length - 1} codes for ${entries.length} attempts`);
  return {
    backlog: Number(reply[0]),
    codes: reply.slice(1).map((c) => {
      const code = CODES[Number(c)];
      if (!code) throw new Error(`intake-admit gave unknown code ${c}`);
      return code;
    }),
  };
}

/**
 * Forgets txn registrations: of attempts not accepted after all (their add failed), and of
 * attempts decided (their decision is stored: Postgres answers for the txn from then on, whatever
 * body a later copy carries, so the key goes whichever body it names).
 */
export async function forgetTxns(redis: QuantaRedis, prefix: string, txns: readonly { acquirerId: string; txnId: string }[]): Promise<void> {
  if (txns.length === 0) return;
  await redis.del(...txns.map((t) => keys.txn(prefix, t.acquirerId, t.txnId)));
}
