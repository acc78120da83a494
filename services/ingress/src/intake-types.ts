import type { Queue } from "bullmq";
import type { Kysely } from "kysely";
import type { Decision, QueuedAttempt, ReceivedAttempt } from "@quanta/domain";
import type { Database, DecisionRow, ImmediateOutcome, ImmediateRecord } from "@quanta/db";
import type { Cluster, QuantaRedis, ReplicaCounts } from "@quanta/queue";
import type { WaitResult } from "./decision-waiter.js";

/** What the Intake (intake.ts) takes, answers, is set with and writes to. */

export interface IntakeEntry {
  attempt: QueuedAttempt | ReceivedAttempt;
  /** Set for a decision the ingress makes itself (no stock needed). */
  immediate?: { decision: Decision; checkHolder: boolean; soldOutTiers?: readonly string[] };
}

/** How a queued attempt's decision reaches the ingress (DecisionWaiter: one subscription per process). */
export interface DecisionWaits {
  wait(key: string, timeoutMs: number): { result: Promise<WaitResult>; cancel: () => void };
}

/** Stores the ingress's own decisions (ImmediateStore: group commit). */
export interface ImmediateWrites {
  store(records: readonly ImmediateRecord[]): Promise<ImmediateOutcome>;
}

export type IntakeResult =
  /** In a job for its partition's owner; `decision` settles when the owner publishes it, or times out (202). */
  | { kind: "queued"; decision: Promise<WaitResult> }
  | { kind: "stored"; row: DecisionRow }
  | { kind: "conflict" }
  | { kind: "overloaded" }
  /** Redis did not admit the batch within admitTimeoutMs: nothing was queued or stored. */
  | { kind: "unavailable" }
  /** A sold_out from the marks that a refund cleared meanwhile: nothing was stored; queue it (as a repeat). */
  | { kind: "stale" };

export interface IntakeOptions {
  prefix: string;
  replyTo: string;
  batchMax: number;
  flushMs: number;
  /** Attempts queued and not yet decided, per partition (backlogMaxPerPartition()). */
  backlogMaxPerPartition: number;
  retentionS: number;
  txnRegistryTtlS: number;
  /** Registry TTL of a txn the ingress stores itself (its key is deleted once the decision is stored). */
  txnInFlightTtlS: number;
  /** How long a queued attempt's caller waits for the decision before answering 202. */
  decisionWaitMs: number;
  admitTimeoutMs: number;
  /** Attempts held at once, buffered or in flight (a stalled Redis must not grow memory without bound). */
  pendingMax: number;
  /** On a Redis Cluster: replicas that must have a job before it counts as accepted (0: the master's word). */
  redisWaitReplicas: number;
  redisWaitTimeoutMs: number;
  /** QUANTA_OUTCOME_SETTLE_MS: how long an add that may have landed is retried under its id. */
  settleMs: number;
}

export interface IntakeStores {
  redis: QuantaRedis;
  queues: readonly Queue[];
  /** On a cluster: the connection the queues were made with (WAIT must run on the connection that wrote), and its masters' replica counts. */
  replication?: { queueRedis: Cluster; replicas: ReplicaCounts };
  db: Kysely<Database>;
  immediates: ImmediateWrites;
  /** Where queued attempts wait for their decision. */
  waits: DecisionWaits;
}
