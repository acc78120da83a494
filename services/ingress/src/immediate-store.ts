import type pg from "pg";
import type { Kysely } from "kysely";
import {
  paceStart,
  recordImmediateBatch,
  takeUpTo,
  withSettlingRetry,
  type Database,
  type ImmediateOutcome,
  type ImmediateRecord,
  type RetryOptions,
} from "@quanta/db";
import { immediateBatchSize, txnRetries, writesSettling } from "@quanta/telemetry";

/**
 * Group commit of the decisions the ingress makes itself (no stock needed: merchant, window,
 * threshold, paused, and sold_out for tiers marked empty everywhere).
 *
 * Inputs: records from any number of intake batches. States of a record: parked -> storing (one
 * autocommit statement, recordImmediateBatch, for up to batchMax records) -> stored | stale (a
 * sold_out whose mark a refund cleared) | failed.
 * Statements start at most every gapMs, and one at a time: under load each carries what arrived
 * meanwhile, so the ingress's commits per second stay bounded whatever the rate; an idle store
 * starts at once (docs/decisions/0001). A statement whose outcome was lost is retried for up to settleMs (it is
 * idempotent and answers a txn stored before with its row): its callers are answered what was
 * stored, or fail with OutcomeUnknownError (never "nothing was accepted" when it may have been;
 * docs/decisions/0012).
 * Trade-off: up to gapMs added to these answers for at most 1000 / gapMs commits a second.
 */
export interface ImmediateStoreOptions {
  gapMs: number;
  batchMax: number;
  /** How long a statement that may have committed is retried to learn its outcome (QUANTA_OUTCOME_SETTLE_MS). */
  settleMs: number;
}

interface Parked {
  records: readonly ImmediateRecord[];
  resolve: (outcome: ImmediateOutcome) => void;
  reject: (error: unknown) => void;
}

const RETRY: RetryOptions = {
  attemptsMax: 4,
  baseDelayMs: 20,
  delayMaxMs: 500,
  onRetry: (cls) => txnRetries.inc({ code: cls }),
};

export class ImmediateStore {
  private parked: Parked[] = [];
  private storing = false;
  private lastStartMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly pool: pg.Pool,
    private readonly db: Kysely<Database>,
    private readonly options: ImmediateStoreOptions,
  ) {}

  store(records: readonly ImmediateRecord[]): Promise<ImmediateOutcome> {
    return new Promise((resolve, reject) => {
      this.parked.push({ records, resolve, reject });
      if (!this.storing) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.storing = true;
    try {
      while (this.parked.length > 0) {
        this.lastStartMs = await paceStart(this.lastStartMs, this.options.gapMs);
        const take = takeUpTo(this.parked, this.options.batchMax, (p) => p.records.length);
        const records = take.flatMap((p) => p.records);
        immediateBatchSize.observe(records.length);
        try {
          const outcome = await withSettlingRetry(() => recordImmediateBatch(this.pool, this.db, records), {
            ...RETRY,
            settleMs: this.options.settleMs,
            onSettling: () => writesSettling.inc({ write: "immediate" }),
          });
          for (const p of take) p.resolve(outcome);
        } catch (error) {
          for (const p of take) p.reject(error);
        }
      }
    } finally {
      this.storing = false;
    }
  }
}
