import { readFileSync } from "node:fs";
import { parseCampaignFile, type Campaign } from "@quanta/domain";
import type { Scenario } from "@quanta/loadtest";

/**
 * The bench's warm-up campaign: the measured campaign's shape (activities, tiers, thresholds,
 * discounts, window) under another id, with its merchants renamed and every quota (and the
 * budget) a hundred times larger, so that a warm-up runs the stock path (batch reads, grants,
 * refills) for seconds without selling out, and without taking a voucher of the campaign the step
 * measures (the former warm-up on the measured campaign took about 300 of them before the clock
 * started).
 */
export const WARM_UP_CAMPAIGN_ID = "bench-warm-up";
const MERCHANT_PREFIX = "W";
const QUOTA_FACTOR = 100;

export function warmUpCampaign(measuredFile: string | URL): Campaign {
  const file = JSON.parse(readFileSync(measuredFile, "utf8")) as {
    id: string;
    name: string;
    budgetFen: number;
    activities: { merchants: string[]; tiers: { quota: number }[] }[];
  };
  return parseCampaignFile({
    ...file,
    id: WARM_UP_CAMPAIGN_ID,
    name: `bench warm-up (the shape of ${file.id})`,
    budgetFen: file.budgetFen * QUOTA_FACTOR,
    activities: file.activities.map((a) => ({
      ...a,
      merchants: a.merchants.map((m) => `${MERCHANT_PREFIX}${m}`),
      tiers: a.tiers.map((t) => ({ ...t, quota: t.quota * QUOTA_FACTOR })),
    })),
  });
}

/** The scenario's payments at the warm-up campaign's merchants, drawn from a population a hundred times larger. */
export function warmUpScenario(scenario: Scenario): Scenario {
  return {
    ...scenario,
    campaignId: WARM_UP_CAMPAIGN_ID,
    merchants: {
      ...scenario.merchants,
      flagship: `${MERCHANT_PREFIX}${scenario.merchants.flagship}`,
      designatedPrefix: `${MERCHANT_PREFIX}${scenario.merchants.designatedPrefix}`,
    },
    // Mostly first payments of their payers, as in the opening seconds (a payer who holds a
    // voucher already takes the cheaper already_redeemed path).
    payers: scenario.payers * QUOTA_FACTOR,
    resendShare: 0,
  };
}
