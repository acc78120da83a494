import { describe, expect, it } from "vitest";
import { CampaignFileError, parseCampaignFile } from "./campaign-file.js";
import { checkCampaignLoad, describeOverlap, OVERLAP_MERCHANTS_SHOWN } from "./campaign-overlap.js";
import { classify, orderCampaigns } from "./classify.js";
import type { Payment } from "./payment.js";

const tiers = [{ id: "T", thresholdFen: 10_000, discountFen: 1_000, quota: 10 }];
const campaign = (id: string, window: [string, string], merchants: string[][], extra: Record<string, unknown> = {}) =>
  parseCampaignFile({
    id,
    name: id,
    budgetFen: 1_000_000,
    window: { start: window[0], end: window[1] },
    activities: merchants.map((m, i) => ({
      id: `${id}-a${i}`,
      name: "activity",
      merchants: m,
      tiers: tiers.map((t) => ({ ...t, id: `${id}-t${i}` })),
    })),
    ...extra,
  });
const september: [string, string] = ["2020-09-13T00:00:00+08:00", "2020-09-30T23:59:59+08:00"];
const loaded = campaign("b2", september, [["M-FLAGSHIP"], ["M-0001", "M-0002", "M-0003"]]);

describe("campaign overlap at load", () => {
  it("refuses a campaign whose window and merchants meet a loaded one's, naming it, the seconds and the merchants", () => {
    const late = campaign(
      "late",
      ["2020-09-25T00:00:00+08:00", "2020-10-10T23:59:59+08:00"],
      [["M-0003", "M-0002", "M-9999"]],
    );
    const check = checkCampaignLoad(late, [loaded]);
    expect(check).toEqual({
      kind: "overlap",
      overlaps: [
        {
          campaignId: "b2",
          startMs: Date.parse("2020-09-25T00:00:00+08:00"),
          endMs: Date.parse("2020-09-30T23:59:59+08:00"),
          merchantCount: 2,
          merchants: ["M-0002", "M-0003"],
        },
      ],
    });
    if (check.kind !== "overlap") return;
    expect(describeOverlap("late", check.overlaps[0]!)).toBe(
      "campaign late overlaps loaded campaign b2 from 2020-09-24T16:00:00.000Z to 2020-09-30T15:59:59.000Z at 2 merchant(s): " +
        'M-0002, M-0003; add "overrides": ["b2"] to late\'s file if it is to win there',
    );
  });

  it("counts every activity's merchants, on both sides", () => {
    const other = campaign("flag", september, [["M-X"], ["M-FLAGSHIP"]]);
    expect(checkCampaignLoad(other, [loaded])).toMatchObject({
      kind: "overlap",
      overlaps: [{ campaignId: "b2", merchants: ["M-FLAGSHIP"] }],
    });
  });

  it("lets through the same merchants in another window, and other merchants in the same window", () => {
    const may = campaign(
      "b1",
      ["2020-05-01T00:00:00+08:00", "2020-05-31T23:59:59+08:00"],
      [["M-FLAGSHIP"], ["M-0001", "M-0002"]],
    );
    const elsewhere = campaign("elsewhere", september, [["N-0001"]]);
    expect(checkCampaignLoad(may, [loaded])).toEqual({ kind: "clear" });
    expect(checkCampaignLoad(elsewhere, [loaded, may])).toEqual({ kind: "clear" });
  });

  it("reads the bounds as inWindow does: a shared last second overlaps, the next day does not", () => {
    const next = campaign("next", ["2020-10-01T00:00:00+08:00", "2020-10-31T23:59:59+08:00"], [["M-0001"]]);
    expect(checkCampaignLoad(next, [loaded])).toEqual({ kind: "clear" });
    // A payment at 23:59:59.500 belongs to a window starting at 23:59:59.400 and to one ending at 23:59:59.
    const touching = campaign("touching", ["2020-09-30T23:59:59.400+08:00", "2020-10-31T23:59:59+08:00"], [["M-0001"]]);
    expect(checkCampaignLoad(touching, [loaded])).toMatchObject({
      kind: "overlap",
      overlaps: [{ startMs: Date.parse("2020-09-30T23:59:59+08:00") }],
    });
  });

  it("names the first merchants in order and counts the rest", () => {
    const many = Array.from({ length: 25 }, (_, i) => `S-${String(25 - i).padStart(2, "0")}`);
    const a = campaign("a", september, [many]);
    const b = campaign("b", september, [[...many].reverse()]);
    const check = checkCampaignLoad(b, [a]);
    expect(check).toMatchObject({
      kind: "overlap",
      overlaps: [{ merchantCount: 25, merchants: many.slice().sort().slice(0, OVERLAP_MERCHANTS_SHOWN) }],
    });
    if (check.kind === "overlap") expect(describeOverlap("b", check.overlaps[0]!)).toContain("S-10 and 15 more;");
  });

  it("accepts an overlap the file declares (overrides), and refuses an override of a campaign that is not loaded", () => {
    const wins = campaign("wins", september, [["M-0001"]], { overrides: ["b2"] });
    expect(checkCampaignLoad(wins, [loaded])).toEqual({ kind: "clear" });
    const third = campaign("third", september, [["M-0001"]]);
    expect(checkCampaignLoad(wins, [loaded, third])).toMatchObject({
      kind: "overlap",
      overlaps: [{ campaignId: "third" }],
    });
    expect(checkCampaignLoad(campaign("ghost", september, [["Z-1"]], { overrides: ["b2", "nope"] }), [loaded])).toEqual(
      { kind: "override_not_loaded", campaignIds: ["nope"] },
    );
  });

  it("refuses a file that overrides itself or names a campaign twice", () => {
    expect(() => campaign("self", september, [["M-1"]], { overrides: ["self"] })).toThrow(CampaignFileError);
    expect(() => campaign("self", september, [["M-1"]], { overrides: ["b2", "b2"] })).toThrow(
      /overrides\[1\]: duplicate campaign b2/,
    );
  });
});

describe("which campaign a payment goes to", () => {
  const pay = (merchantId: string, paidAt: string): Payment => ({
    txnId: "t",
    payerId: "p",
    merchantId,
    amountFen: 20_000,
    paidAtMs: Date.parse(paidAt),
  });
  const late = campaign("late", ["2020-09-25T00:00:00+08:00", "2020-10-10T23:59:59+08:00"], [["M-0002"]], {
    overrides: ["b2"],
  });
  const campaigns = orderCampaigns([loaded, late]);

  it("goes to the overriding campaign where both hold it, although its window starts later", () => {
    expect(classify(pay("M-0002", "2020-09-26T10:00:00+08:00"), campaigns)).toMatchObject({
      request: { campaignId: "late" },
    });
  });

  it("stays with the overridden campaign outside the overlap", () => {
    expect(classify(pay("M-0002", "2020-09-20T10:00:00+08:00"), campaigns)).toMatchObject({
      request: { campaignId: "b2" },
    });
    expect(classify(pay("M-0001", "2020-09-26T10:00:00+08:00"), campaigns)).toMatchObject({
      request: { campaignId: "b2" },
    });
    expect(classify(pay("M-0002", "2020-10-05T10:00:00+08:00"), campaigns)).toMatchObject({
      request: { campaignId: "late" },
    });
  });

  it("puts every campaign after those that override it, transitively, and otherwise by window", () => {
    const early = campaign("early", ["2020-01-01T00:00:00+08:00", "2020-01-31T23:59:59+08:00"], [["E-1"]]);
    const latest = campaign("latest", ["2020-09-28T00:00:00+08:00", "2020-09-29T23:59:59+08:00"], [["M-0002"]], {
      overrides: ["late"],
    });
    expect(orderCampaigns([loaded, late, early, latest]).map((c) => c.id)).toEqual(["early", "latest", "late", "b2"]);
    expect(orderCampaigns([latest, loaded]).map((c) => c.id)).toEqual(["b2", "latest"]);
  });
});
