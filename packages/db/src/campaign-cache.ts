import type { Kysely } from "kysely";
import { orderCampaigns, type Campaign } from "@quanta/domain";
import { readCampaigns } from "./campaign-repo.js";
import { PeriodicRefresh } from "./periodic-refresh.js";
import type { Database } from "./schema.js";

/**
 * The loaded campaigns, held in memory and re-read every refreshMs so a
 * campaign loaded while the ingress runs is served without a restart.
 * A failed refresh keeps the last good copy (and logs).
 */
export class CampaignCache extends PeriodicRefresh {
  private campaigns: Campaign[] = [];
  private index: ReadonlyMap<string, Campaign> = new Map();

  constructor(
    private readonly db: Kysely<Database>,
    onError: (error: unknown) => void,
    refreshMs: number,
  ) {
    super(onError, refreshMs);
  }

  override async refresh(): Promise<void> {
    this.campaigns = orderCampaigns(await readCampaigns(this.db));
    this.index = new Map(this.campaigns.map((c) => [c.id, c]));
  }

  current(): readonly Campaign[] {
    return this.campaigns;
  }

  /** Built once per refresh: the worker asks for it on every batch. */
  byId(): ReadonlyMap<string, Campaign> {
    return this.index;
  }
}
