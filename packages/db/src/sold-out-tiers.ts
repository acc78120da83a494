import { sql, type Kysely } from "kysely";
import { tierKey } from "@quanta/domain";
import { PeriodicRefresh } from "./periodic-refresh.js";
import type { Database } from "./schema.js";

/**
 * Tiers marked empty in every partition and the pool (`tiers.sold_out_at`),
 * re-read every refreshMs, so that the ingress can answer `sold_out` for them
 * without the queue.
 *
 * States of a tier here: has stock -> sold out -> has stock again (a refund
 * returned a voucher and cleared the mark). Each refresh replaces the whole
 * set. Staleness is harmless both ways: a tier not yet known empty goes
 * through the queue, where the worker says the same thing; a tier whose mark
 * a refund cleared is caught by the statement that stores the sold_out
 * (record-immediate-batch re-checks the marks under lock) and queued.
 */
export class SoldOutTiers extends PeriodicRefresh {
  private keys: ReadonlySet<string> = new Set();

  constructor(
    private readonly db: Kysely<Database>,
    onError: (error: unknown) => void,
    refreshMs: number,
  ) {
    super(onError, refreshMs);
  }

  override async refresh(): Promise<void> {
    const rows = (
      await sql<{
        campaign_id: string;
        id: string;
      }>`select campaign_id, id from tiers where sold_out_at is not null`.execute(this.db)
    ).rows;
    this.keys = new Set(rows.map((r) => tierKey(r.campaign_id, r.id)));
  }

  /** True when every one of the tiers (campaignId/tierId keys) is known to be empty everywhere. */
  allEmpty(campaignId: string, tierIds: readonly string[]): boolean {
    return tierIds.length > 0 && tierIds.every((t) => this.keys.has(tierKey(campaignId, t)));
  }
}
