import { parseCampaignFile, type Campaign } from "@quanta/domain";

/** The window every test campaign runs in: 13 to 30 September 2020, Beijing time. */
export const TEST_WINDOW = { start: "2020-09-13T00:00:00+08:00", end: "2020-09-30T23:59:59+08:00" };

export interface TestTier {
  id: string;
  thresholdFen: number;
  discountFen: number;
  quota: number;
}

/**
 * A campaign of one activity over TEST_WINDOW, parsed as a campaign file is (so it is checked the
 * same way): what a test writes is what makes its case, the campaign's id, budget, merchants and
 * tiers.
 */
export function testCampaign(
  campaign: { id: string; name: string; budgetFen: number; refundSlot?: "kept" | "released" },
  activity: { id: string; name: string; merchants: string[] },
  tiers: TestTier[],
): Campaign {
  return parseCampaignFile({ ...campaign, window: TEST_WINDOW, activities: [{ ...activity, tiers }] });
}
