import { partitionOf } from "@quanta/domain";

/**
 * Every Redis name quanta uses, under one deployment prefix. BullMQ queues use the same prefix,
 * so one prefix isolates a deployment (or a test file).
 *
 * Slots (Redis Cluster): a key's slot is the hash of its first {tag}. A partition's keys and its
 * queue carry the partition's tag ({p007}), so its queue, backlog counter and lease share one
 * slot and partitions spread over the masters. The txn registry is keyed by txn, not by payer:
 * two bodies of one txnId may name different payers (so different partitions) and must still
 * meet on one key (409), so a registration carries the tag of its registry shard ({r07}), a hash
 * of the txn (docs/decisions/0010). On a single Redis the tags are only names.
 */
export const REGISTRY_SHARDS = 16;

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** The hash tag of a partition's keys and queue. */
export const partitionTag = (partition: number): string => `{p${pad(partition, 3)}}`;

/** The registry shard of a txn: a stable hash, so every ingress and worker finds the same key. */
export const registryShard = (acquirerId: string, txnId: string): number =>
  partitionOf(`${acquirerId}/${txnId}`, REGISTRY_SHARDS);

export function queueName(partition: number): string {
  return `attempts-p${pad(partition, 3)}`;
}

/** BullMQ's prefix for a partition's queue: its keys are `<queuePrefix>:<queueName>:<suffix>`, all in the partition's slot. */
export function queuePrefix(prefix: string, partition: number): string {
  return `${prefix}:${partitionTag(partition)}`;
}

export const keys = {
  /** Attempts queued for the partition and not yet decided (the backlog bound holds per partition). */
  backlog: (prefix: string, partition: number) => `${prefix}:${partitionTag(partition)}:backlog`,
  txn: (prefix: string, acquirerId: string, txnId: string) =>
    `${prefix}:{r${pad(registryShard(acquirerId, txnId), 2)}}:txn:${acquirerId}:${txnId}`,
  /** A SCAN/KEYS pattern for every registration (tests, clean-up). */
  txnPattern: (prefix: string) => `${prefix}:{r*}:txn:*`,
  lease: (prefix: string, partition: number) => `${prefix}:${partitionTag(partition)}:lease`,
  workers: (prefix: string) => `${prefix}:workers`,
  /** A sharded pub/sub channel (SPUBLISH/SSUBSCRIBE): one ingress's decisions, on one node only. */
  decisions: (prefix: string, ingressId: string) => `${prefix}:decisions:${ingressId}`,
  /** BullMQ's own keys for a queue (used only by the backlog reset script). */
  bull: (prefix: string, partition: number, suffix: "wait" | "active" | "delayed" | "prioritized") =>
    `${queuePrefix(prefix, partition)}:${queueName(partition)}:${suffix}`,
};
