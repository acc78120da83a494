import { z } from "zod";
import type { QueuedAttempt } from "@quanta/domain";

/**
 * A queue job carries a batch of attempts from one ingress for one partition
 * (group commit into Redis). The payload holds only what the decision needs.
 */
const id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
export const attemptSchema = z.object({
  acquirerId: id,
  bodyHash: z.string().min(1).max(64),
  payment: z.object({
    txnId: id,
    payerId: id,
    merchantId: id,
    amountFen: z.number().int().min(1).max(100_000_000),
    paidAtMs: z.number().int(),
  }),
  receivedAtMs: z.number().int(),
  partition: z.number().int().min(0).max(255),
  request: z.object({ campaignId: id, activityId: id, tierIds: z.array(id).min(1).max(64) }),
});

/** Bound on the attempts of one job (the ingress writes at most QUANTA_INTAKE_BATCH_MAX). */
export const ATTEMPTS_PER_JOB_MAX = 1_000;

export const batchJobSchema = z.object({
  /** Ingress that waits for these decisions (its reply channel); empty when nobody waits. */
  replyTo: z.string().max(128),
  /** Backlog room the job's attempts took at admission: given back once, when the job completes. */
  room: z.number().int().min(0).max(ATTEMPTS_PER_JOB_MAX).optional(),
  attempts: z.array(attemptSchema).min(1).max(ATTEMPTS_PER_JOB_MAX),
});

export type BatchJob = { replyTo: string; room?: number; attempts: QueuedAttempt[] };

/** Decisions published to an ingress, one message per worker round. */
export interface DecisionMessage {
  /** waitKey -> answer body JSON, or null for a txn conflict. */
  readonly answers: readonly [key: string, body: unknown | null][];
}

/**
 * What a waiting callback is known by: the txn and the body it carries. Two bodies of one txn can
 * be queued at once (another body arriving after the first one's decision was stored and its
 * registration deleted); each must hear its own answer, never the other's.
 */
export const waitKey = (acquirerId: string, txnId: string, bodyHash: string): string =>
  `${acquirerId}/${txnId}#${bodyHash}`;
