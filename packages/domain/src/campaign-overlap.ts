import type { Campaign } from "./campaign.js";

/**
 * Two campaigns overlap where one payment could belong to either: a second inside both windows
 * (bounds inclusive to the second, as inWindow reads them) at a merchant both list, in any of
 * their activities. Such a payment goes to whichever campaign is tried first, so an overlap
 * nobody declared is a plan mistake (the same shop in two batches' weeks) that would spend one
 * campaign's vouchers on the other's days. A new campaign that overlaps a loaded one is refused
 * at load unless its file names the loaded one in `overrides`: then it wins where they overlap
 * (orderCampaigns tries it first) and the loaded one keeps the rest.
 *
 * Only campaigns already loaded can be overridden, so the "wins over" relation follows load order
 * and never loops.
 */
export interface CampaignOverlap {
  /** The loaded campaign the new one overlaps. */
  readonly campaignId: string;
  /** The seconds both windows hold, epoch milliseconds, inclusive. */
  readonly startMs: number;
  readonly endMs: number;
  /** How many merchants both list, and the first few of them in order. */
  readonly merchantCount: number;
  readonly merchants: readonly string[];
}

export type CampaignLoadCheck =
  | { readonly kind: "clear" }
  | { readonly kind: "overlap"; readonly overlaps: readonly CampaignOverlap[] }
  | { readonly kind: "override_not_loaded"; readonly campaignIds: readonly string[] };

/** Merchants named in an overlap: enough to find the plan's mistake, small enough for an answer. */
export const OVERLAP_MERCHANTS_SHOWN = 10;

export function checkCampaignLoad(candidate: Campaign, loaded: readonly Campaign[]): CampaignLoadCheck {
  const overrides = new Set(candidate.overrides ?? []);
  const loadedIds = new Set(loaded.map((c) => c.id));
  const unknown = [...overrides].filter((id) => !loadedIds.has(id));
  if (unknown.length > 0) return { kind: "override_not_loaded", campaignIds: unknown };
  const overlaps = loaded
    .filter((other) => other.id !== candidate.id && !overrides.has(other.id))
    .map((other) => campaignOverlap(candidate, other))
    .filter((o): o is CampaignOverlap => o !== undefined)
    .sort((a, b) => a.campaignId.localeCompare(b.campaignId));
  return overlaps.length === 0 ? { kind: "clear" } : { kind: "overlap", overlaps };
}

/** Where `a` and `b` could both take a payment, reported against `b`; undefined when nowhere. */
export function campaignOverlap(a: Campaign, b: Campaign): CampaignOverlap | undefined {
  const startMs = Math.max(wholeSecond(a.windowStartMs), wholeSecond(b.windowStartMs));
  const endMs = Math.min(a.windowEndMs, b.windowEndMs);
  if (startMs > endMs) return undefined;
  const ofA = merchantsOf(a);
  const shared = [...merchantsOf(b)].filter((m) => ofA.has(m));
  if (shared.length === 0) return undefined;
  shared.sort();
  return {
    campaignId: b.id,
    startMs,
    endMs,
    merchantCount: shared.length,
    merchants: shared.slice(0, OVERLAP_MERCHANTS_SHOWN),
  };
}

/** One line an operator can act on: which campaign, when, where, and how to say which wins. */
export function describeOverlap(candidateId: string, o: CampaignOverlap): string {
  const more = o.merchantCount > o.merchants.length ? ` and ${o.merchantCount - o.merchants.length} more` : "";
  return (
    `campaign ${candidateId} overlaps loaded campaign ${o.campaignId} from ${new Date(o.startMs).toISOString()} to ` +
    `${new Date(o.endMs).toISOString()} at ${o.merchantCount} merchant(s): ${o.merchants.join(", ")}${more}; ` +
    `add "overrides": ["${o.campaignId}"] to ${candidateId}'s file if it is to win there`
  );
}

function merchantsOf(c: Campaign): Set<string> {
  const all = new Set<string>();
  for (const activity of c.activities) for (const m of activity.merchants) all.add(m);
  return all;
}

function wholeSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}
