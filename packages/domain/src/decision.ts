import type { Fen } from "./money.js";

/** The contract's rejection reasons, in the order they are checked. */
export const REJECTION_REASONS = [
  "merchant_not_eligible",
  "outside_window",
  "activity_paused",
  "below_threshold",
  "already_redeemed",
  "sold_out",
  "budget_exhausted",
] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

export interface Granted {
  readonly status: "granted";
  readonly campaignId: string;
  readonly activityId: string;
  readonly tierId: string;
  readonly discountFen: Fen;
  readonly payableFen: Fen;
}

export interface Rejected {
  readonly status: "rejected";
  readonly reason: RejectionReason;
  /** The activity the merchant selected, when one did (absent for merchant_not_eligible). */
  readonly campaignId?: string;
  readonly activityId?: string;
}

export type Decision = Granted | Rejected;

export function rejected(reason: RejectionReason, campaignId?: string, activityId?: string): Rejected {
  return campaignId === undefined
    ? { status: "rejected", reason }
    : { status: "rejected", reason, campaignId, activityId };
}
