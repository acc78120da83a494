import { randomBytes } from "node:crypto";
import { payerInPartition, type QueuedAttempt } from "@quanta/domain";
import { CampaignCache, DEFAULT_RETRY, claimPartition, connect, decideRounds, type PartitionBatch } from "@quanta/db";

/**
 * The decision rounds `quanta pg-capacity` drives: each attempt a new payer of the round's
 * partition, paying enough for the top tier of A2, decided by decideRounds as a worker owning
 * every partition would (its epochs claimed once).
 */
export class CapacityRounds {
  private serial = 0;

  private constructor(
    private readonly db: ReturnType<typeof connect>,
    private readonly cache: CampaignCache,
    private readonly epochs: readonly number[],
    private readonly campaignId: string,
    private readonly partitionsMax: number,
  ) {}

  static async open(db: ReturnType<typeof connect>, campaignId: string, partitionsMax: number) {
    const cache = new CampaignCache(db.kysely, () => undefined, 60_000);
    await cache.refresh();
    const epochs: number[] = [];
    for (let p = 0; p < partitionsMax; p++) epochs.push(await claimPartition(db.kysely, p, "pg-capacity"));
    return new CapacityRounds(db, cache, epochs, campaignId, partitionsMax);
  }

  /** One round of `size` attempts in the partition; committed(n) for each commit, n the decisions it held. */
  async round(partition: number, size: number, committed: (n: number) => void): Promise<void> {
    const batch: PartitionBatch = {
      partition,
      epoch: this.epochs[partition]!,
      attempts: Array.from({ length: size }, () => this.attemptIn(partition)),
    };
    await decideRounds(this.db.pool, [batch], this.cache.byId(), this.partitionsMax, {
      retry: DEFAULT_RETRY,
      onCommit: (results) => committed(results.length),
      // A refill in its own transaction is a commit that decides nothing.
      onRefill: (_move, ms) => ms > 0 && committed(0),
    });
  }

  private attemptIn(partition: number): QueuedAttempt {
    const txnId = `c${(this.serial++).toString(36)}${randomBytes(2).toString("hex")}`;
    return {
      acquirerId: "acq-capacity",
      bodyHash: `h${txnId}`,
      payment: {
        txnId,
        payerId: payerInPartition(`${txnId}p`, partition, this.partitionsMax),
        merchantId: "M-0001",
        amountFen: 250_000,
        paidAtMs: Date.parse("2020-09-13T10:00:00+08:00"),
      },
      receivedAtMs: Date.now(),
      partition,
      request: {
        campaignId: this.campaignId,
        activityId: "A2",
        tierIds: ["A2-400", "A2-200", "A2-100", "A2-50", "A2-20"],
      },
    };
  }
}
