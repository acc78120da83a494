import { parseCampaignFile } from "./campaign-file.js";
import type { Campaign } from "./campaign.js";

/** A campaign shaped like the seed, small enough to read in a test. */
export const seedLike = (overrides: Record<string, unknown> = {}): Campaign =>
  parseCampaignFile({
    id: "c1",
    name: "seed-like",
    budgetFen: 200_000_000,
    window: { start: "2020-09-13T00:00:00+08:00", end: "2020-09-30T23:59:59+08:00" },
    activities: [
      {
        id: "A1",
        name: "flagship",
        merchants: ["M-FLAGSHIP"],
        tiers: [{ id: "A1-100", thresholdFen: 20_000, discountFen: 10_000, quota: 4_000 }],
      },
      {
        id: "A2",
        name: "designated",
        merchants: ["M-0001", "M-0002", "M-FLAGSHIP"],
        tiers: [
          { id: "A2-20", thresholdFen: 10_000, discountFen: 2_000, quota: 250 },
          { id: "A2-400", thresholdFen: 200_000, discountFen: 40_000, quota: 3_000 },
          { id: "A2-100", thresholdFen: 50_000, discountFen: 10_000, quota: 900 },
        ],
      },
    ],
    ...overrides,
  });
