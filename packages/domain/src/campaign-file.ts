import { z } from "zod";
import type { Activity, Campaign, Tier } from "./campaign.js";
import { sortTiersForChoice } from "./campaign.js";

/**
 * The campaign file: a county's plan as data (JSON). Money is integer fen,
 * times are ISO-8601 with an offset. Every problem is reported with the path
 * of the field at fault, and a file with any problem loads nothing.
 */
const id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1-64 chars of [A-Za-z0-9_-]");
const isoWithOffset = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/, "ISO-8601 date-time with an offset")
  .refine((s) => Number.isFinite(Date.parse(s)), "not a real date-time");
const fen = z.number().int("an integer number of fen").min(1).max(Number.MAX_SAFE_INTEGER);

const tierSchema = z.strictObject({
  id,
  thresholdFen: fen,
  discountFen: fen,
  quota: z.number().int().min(1).max(100_000_000),
});

const activitySchema = z.strictObject({
  id,
  name: z.string().min(1).max(200),
  merchants: z.array(id).min(1).max(1_000_000),
  tiers: z.array(tierSchema).min(1).max(64),
});

export const campaignFileSchema = z
  .strictObject({
    id,
    name: z.string().min(1).max(200),
    /** Where the plan comes from (a document number, a file); not used by the system. */
    source: z.string().max(500).optional(),
    budgetFen: fen,
    window: z.strictObject({ start: isoWithOffset, end: isoWithOffset }),
    tierPolicy: z.enum(["best_available", "exact"]).default("best_available"),
    /** When a refund returns a voucher: does the payer get their one-per-activity slot back? */
    refundSlot: z.enum(["kept", "released"]).default("kept"),
    activities: z.array(activitySchema).min(1).max(64),
    /**
     * Ids of loaded campaigns this one wins over where their windows and merchants overlap; an
     * overlap that is not declared here is refused at load.
     */
    overrides: z.array(id).max(64).optional(),
  })
  .superRefine((file, ctx) => {
    if (Date.parse(file.window.end) < Date.parse(file.window.start)) {
      ctx.addIssue({ code: "custom", path: ["window", "end"], message: "window ends before it starts" });
    }
    const overridden = new Set<string>();
    file.overrides?.forEach((other, oi) => {
      if (other === file.id)
        ctx.addIssue({ code: "custom", path: ["overrides", oi], message: "a campaign cannot override itself" });
      if (overridden.has(other))
        ctx.addIssue({ code: "custom", path: ["overrides", oi], message: `duplicate campaign ${other}` });
      overridden.add(other);
    });
    const activityIds = new Set<string>();
    const tierIds = new Set<string>();
    file.activities.forEach((activity, ai) => {
      if (activityIds.has(activity.id)) {
        ctx.addIssue({
          code: "custom",
          path: ["activities", ai, "id"],
          message: `duplicate activity id ${activity.id}`,
        });
      }
      activityIds.add(activity.id);
      const merchants = new Set<string>();
      activity.merchants.forEach((m, mi) => {
        if (merchants.has(m)) {
          ctx.addIssue({
            code: "custom",
            path: ["activities", ai, "merchants", mi],
            message: `duplicate merchant ${m}`,
          });
        }
        merchants.add(m);
      });
      const thresholds = new Set<number>();
      activity.tiers.forEach((tier, ti) => {
        const at = ["activities", ai, "tiers", ti];
        if (tierIds.has(tier.id))
          ctx.addIssue({ code: "custom", path: [...at, "id"], message: `duplicate tier id ${tier.id}` });
        tierIds.add(tier.id);
        if (tier.discountFen >= tier.thresholdFen) {
          ctx.addIssue({
            code: "custom",
            path: [...at, "discountFen"],
            message: "discount must be below the threshold",
          });
        }
        if (thresholds.has(tier.thresholdFen)) {
          ctx.addIssue({
            code: "custom",
            path: [...at, "thresholdFen"],
            message: "two tiers of one activity share a threshold",
          });
        }
        thresholds.add(tier.thresholdFen);
      });
    });
  });

export type CampaignFile = z.input<typeof campaignFileSchema>;

export class CampaignFileError extends Error {
  override readonly name = "CampaignFileError";
  constructor(readonly problems: readonly { path: string; message: string }[]) {
    super(`campaign file is invalid:\n${problems.map((p) => `  - ${p.path || "(root)"}: ${p.message}`).join("\n")}`);
  }
}

/** Parses and checks a campaign file; throws CampaignFileError naming every bad field. */
export function parseCampaignFile(input: unknown): Campaign {
  const result = campaignFileSchema.safeParse(input);
  if (!result.success) {
    throw new CampaignFileError(
      result.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
    );
  }
  const file = result.data;
  const campaign: Campaign = {
    id: file.id,
    name: file.name,
    budgetFen: file.budgetFen,
    windowStartMs: Date.parse(file.window.start),
    windowEndMs: Date.parse(file.window.end),
    tierPolicy: file.tierPolicy,
    refundSlot: file.refundSlot,
    overrides: file.overrides ?? [],
    activities: file.activities.map((a): Activity => ({
      id: a.id,
      name: a.name,
      merchants: new Set(a.merchants),
      tiers: sortTiersForChoice(a.tiers.map((t): Tier => ({ ...t, activityId: a.id }))),
    })),
  };
  return campaign;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
    .join("")
    .replace(/^\./, "");
}
