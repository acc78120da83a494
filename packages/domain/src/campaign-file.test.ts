import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CampaignFileError, parseCampaignFile, type CampaignFile } from "./campaign-file.js";
import { isBudgetCapped, totalQuotaDiscountFen } from "./campaign.js";

const seedPath = new URL("../../../campaigns/qianan-2020-b2.json", import.meta.url);
const seed = () => JSON.parse(readFileSync(seedPath, "utf8")) as CampaignFile;

describe("campaign file", () => {
  it("loads the seed campaign exactly as the contract gives it", () => {
    const c = parseCampaignFile(seed());
    expect(c.id).toBe("qianan-2020-b2");
    expect(c.budgetFen).toBe(200_000_000);
    expect(c.tierPolicy).toBe("best_available");
    expect(c.activities.map((a) => a.id)).toEqual(["A1", "A2"]);
    expect([...c.activities[0]!.merchants]).toEqual(["M-FLAGSHIP"]);
    expect(c.activities[1]!.merchants.size).toBe(500);
    expect(c.activities[1]!.merchants.has("M-0001") && c.activities[1]!.merchants.has("M-0500")).toBe(true);
    const tiers = c.activities.flatMap((a) => a.tiers.map((t) => [t.id, t.thresholdFen, t.discountFen, t.quota]));
    expect(tiers).toEqual([
      ["A1-100", 20_000, 10_000, 4_000],
      ["A2-400", 200_000, 40_000, 3_000],
      ["A2-200", 100_000, 20_000, 1_400],
      ["A2-100", 50_000, 10_000, 900],
      ["A2-50", 20_000, 5_000, 500],
      ["A2-20", 10_000, 2_000, 250],
    ]);
    expect(c.windowStartMs).toBe(Date.parse("2020-09-13T00:00:00+08:00"));
    expect(totalQuotaDiscountFen(c)).toBe(200_000_000);
  });

  it("names the bad field and loads nothing", () => {
    const file = seed();
    file.activities[1]!.tiers[2]!.quota = 1.5;
    file.window.start = "2020-09-13 00:00";
    try {
      parseCampaignFile(file);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(CampaignFileError);
      const paths = (error as CampaignFileError).problems.map((p) => p.path);
      expect(paths).toContain("activities[1].tiers[2].quota");
      expect(paths).toContain("window.start");
    }
  });

  it("refuses unknown fields, duplicate ids and discounts at or above the threshold", () => {
    const typo = { ...seed(), tierpolicy: "exact" };
    expect(() => parseCampaignFile(typo)).toThrow(/tierpolicy/);
    const dup = seed();
    dup.activities[1]!.tiers[1]!.id = "A2-20";
    expect(() => parseCampaignFile(dup)).toThrow(/activities\[1\]\.tiers\[1\]\.id: duplicate tier id A2-20/);
    const big = seed();
    big.activities[0]!.tiers[0]!.discountFen = 20_000;
    expect(() => parseCampaignFile(big)).toThrow(/discountFen: discount must be below the threshold/);
  });

  it("accepts a budget below the quotas as a cap (额满即止), and a budget that covers them as no cap", () => {
    expect(isBudgetCapped(parseCampaignFile({ ...seed(), budgetFen: 199_999_999 }))).toBe(true);
    expect(isBudgetCapped(parseCampaignFile(seed()))).toBe(false);
    expect(() => parseCampaignFile({ ...seed(), budgetFen: 0 })).toThrow(/budgetFen/);
  });
});
