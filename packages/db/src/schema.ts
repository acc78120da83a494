import type { ColumnType, Generated, Transaction } from "kysely";

/** The typed Postgres schema. bigint columns arrive as strings from pg; see numeric parsing in connect.ts. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface CampaignTable {
  id: string;
  name: string;
  budget_fen: number;
  /** Budget below the sum of quota x discount: grants draw from budget_left_fen (额满即止). */
  budget_capped: Generated<boolean>;
  budget_left_fen: number;
  window_start: Timestamp;
  window_end: Timestamp;
  tier_policy: "best_available" | "exact";
  /** After a refund returns a voucher: does the payer get their slot back? */
  refund_slot: ColumnType<"kept" | "released", "kept" | "released" | undefined, "kept" | "released">;
  /** Campaigns this one wins over where they overlap (checked at load, honoured by orderCampaigns). */
  overrides: ColumnType<string[], string[] | undefined, never>;
  loaded_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface ActivityTable {
  campaign_id: string;
  id: string;
  position: number;
  name: string;
  paused_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface AdminAuditTable {
  id: Generated<number>;
  at: ColumnType<Date, Date | string | undefined, never>;
  actor: string;
  action: string;
  target: string;
  details: ColumnType<unknown, string | undefined, never>;
}

export interface ActivityMerchantTable {
  campaign_id: string;
  activity_id: string;
  merchant_id: string;
}

export interface TierTable {
  campaign_id: string;
  id: string;
  activity_id: string;
  threshold_fen: number;
  discount_fen: number;
  quota: number;
  /** Stock not held by any partition. */
  pool: number;
  /** Size of one refill of a partition's share. */
  chunk: number;
  /** Set once pool and every share were seen empty under lock. */
  sold_out_at: Timestamp | null;
}

export interface TierShareTable {
  campaign_id: string;
  tier_id: string;
  partition: number;
  remaining: number;
}

export interface PartitionTable {
  partition: number;
  owner: string | null;
  /** Fencing token: bumped on every change of owner; a batch commits only under the epoch it started with. */
  epoch: number;
  acquired_at: Timestamp | null;
}

export interface SettingTable {
  key: string;
  value: string;
}

export type AttemptStatus = "granted" | "rejected";

export interface AttemptTable {
  acquirer_id: string;
  txn_id: string;
  body_hash: string;
  payer_id: string;
  merchant_id: string;
  amount_fen: number;
  paid_at: Timestamp;
  received_at: Timestamp;
  decided_at: ColumnType<Date, Date | string | undefined, Date | string>;
  partition: number;
  status: AttemptStatus;
  reason: string | null;
  campaign_id: string | null;
  activity_id: string | null;
  tier_id: string | null;
  discount_fen: number | null;
  payable_fen: number | null;
  /**
   * "ingress": decided without stock (no tier qualifies, or all are empty everywhere); "worker":
   * decided in a partition owner's batch transaction, whether the owner is a worker or an ingress.
   */
  decided_by: "ingress" | "worker";
  /** A refund returned this grant's voucher to its tier's pool. */
  voucher_returned_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** ... and gave the payer their one-per-activity slot back (campaign policy `released`). */
  slot_released_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface RefundTable {
  acquirer_id: string;
  refund_id: string;
  txn_id: string;
  body_hash: string;
  amount_fen: number;
  refunded_at: Timestamp;
  received_at: ColumnType<Date, Date | string | undefined, never>;
  outcome: "voucher_returned" | "voucher_kept" | "no_voucher";
  reason: "payment_rejected" | "voucher_already_returned" | null;
  /** Every refund of the payment up to and including this one. */
  refunded_total_fen: number;
  slot_released: boolean;
}

export interface Database {
  campaigns: CampaignTable;
  admin_audit: AdminAuditTable;
  activities: ActivityTable;
  activity_merchants: ActivityMerchantTable;
  tiers: TierTable;
  tier_shares: TierShareTable;
  partitions: PartitionTable;
  settings: SettingTable;
  attempts: AttemptTable;
  refunds: RefundTable;
}

/** A transaction on this schema, as the multi-step writers (refunds, settlement) pass it between steps. */
export type Trx = Transaction<Database>;
