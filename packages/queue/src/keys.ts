/**
 * Every Redis name quanta uses, under one deployment prefix. BullMQ queues
 * use the same prefix, so one prefix isolates a deployment (or a test file).
 */
export function queueName(partition: number): string {
  return `attempts-p${String(partition).padStart(3, "0")}`;
}

export const keys = {
  backlog: (prefix: string) => `${prefix}:backlog`,
  txn: (prefix: string, acquirerId: string, txnId: string) => `${prefix}:txn:${acquirerId}:${txnId}`,
  lease: (prefix: string, partition: number) => `${prefix}:lease:${partition}`,
  workers: (prefix: string) => `${prefix}:workers`,
  decisions: (prefix: string, ingressId: string) => `${prefix}:decisions:${ingressId}`,
  /** BullMQ's own keys for a queue (used only by the backlog reset script). */
  bull: (prefix: string, partition: number, suffix: "wait" | "active" | "delayed" | "prioritized") =>
    `${prefix}:${queueName(partition)}:${suffix}`,
};
