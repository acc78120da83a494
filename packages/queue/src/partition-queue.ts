import { Queue } from "bullmq";
import { queueName, queuePrefix } from "./keys.js";
import { QUEUE_STREAMS } from "./options.js";
import type { QuantaRedis } from "./redis.js";

/**
 * A partition's BullMQ Queue, made one way for every process that adds to or tends it (the
 * ingress's intake, the owner's housekeeping). A Queue writes its options into the queue's meta:
 * one made without QUEUE_STREAMS would set the events stream's cap back to BullMQ's default
 * (docs/decisions/0015).
 */
export function partitionQueue(connection: QuantaRedis, prefix: string, partition: number): Queue {
  return new Queue(queueName(partition), {
    connection,
    prefix: queuePrefix(prefix, partition),
    skipVersionCheck: true,
    streams: QUEUE_STREAMS,
  });
}
