import { tierReport, type TierReport } from "@quanta/db";
import { CallbackClient } from "@quanta/loadtest";
import { refundPhase, type RefundPhaseResult } from "./rush-refunds.js";
import { checkThroughGet, type GetChecks } from "./rush-get-checks.js";
import type { RushDrive } from "./rush-drive.js";
import type { RushWorld } from "./rush-world.js";

/**
 * After the rush has drained, while the services still run: the answers checked through GET, the
 * tiers as the rush left them (their sell-out times), then the refund phase when a share is asked
 * for. The tiers are read before the refunds, which give vouchers back.
 */
export interface AfterRush {
  getChecks: GetChecks;
  rushTiers: TierReport[];
  refunds: RefundPhaseResult | undefined;
}

export async function afterRush(world: RushWorld, drive: RushDrive): Promise<AfterRush> {
  const { settings, out, acquirerId } = world;
  const client = new CallbackClient(world.baseUrl, acquirerId, world.secret, 32);
  try {
    const getChecks = await checkThroughGet(client, world.db, acquirerId, drive.run.records, settings.getChecksMax);
    const rushTiers = await tierReport(world.db.kysely, world.campaign.id);
    let refunds: RefundPhaseResult | undefined;
    if ((settings.refundShare ?? 0) > 0) {
      out("");
      out("  after the rush: refunds, then new payers claim the returned vouchers");
      refunds = await refundPhase({
        client,
        db: world.db,
        acquirerId,
        campaignId: world.campaign.id,
        share: settings.refundShare!,
        seed: settings.seed,
        out,
      });
    }
    return { getChecks, rushTiers, refunds };
  } finally {
    await client.close();
  }
}
