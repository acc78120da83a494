import { sql, type Kysely, type Selectable } from "kysely";
import type { Decision, Payment, RejectionReason } from "@quanta/domain";
import type { AttemptTable, Database } from "./schema.js";

export type AttemptRow = Selectable<AttemptTable>;

/**
 * The columns an answer is made of (the decision, and the key and body hash a copy is matched
 * against). The hot path's statements return only these: the client parses no column an answer
 * does not use (docs/decisions/0008).
 */
export const DECISION_COLUMNS = [
  "acquirer_id",
  "txn_id",
  "body_hash",
  "status",
  "reason",
  "campaign_id",
  "activity_id",
  "tier_id",
  "discount_fen",
  "payable_fen",
] as const;
export type DecisionRow = Pick<AttemptRow, (typeof DECISION_COLUMNS)[number]>;
/** DECISION_COLUMNS as a select list, optionally qualified by a table alias. */
export const decisionColumnList = (alias?: string): string =>
  DECISION_COLUMNS.map((c) => (alias ? `${alias}.${c}` : c)).join(", ");

export { attemptKey } from "@quanta/domain";

export function rowDecision(row: DecisionRow): Decision {
  if (row.status === "granted") {
    return {
      status: "granted",
      campaignId: row.campaign_id!,
      activityId: row.activity_id!,
      tierId: row.tier_id!,
      discountFen: row.discount_fen!,
      payableFen: row.payable_fen!,
    };
  }
  const reason = row.reason as RejectionReason;
  return row.campaign_id === null
    ? { status: "rejected", reason }
    : { status: "rejected", reason, campaignId: row.campaign_id, activityId: row.activity_id ?? undefined };
}

export async function findAttempt(
  db: Kysely<Database>,
  acquirerId: string,
  txnId: string,
): Promise<AttemptRow | undefined> {
  return db
    .selectFrom("attempts")
    .selectAll()
    .where("acquirer_id", "=", acquirerId)
    .where("txn_id", "=", txnId)
    .executeTakeFirst();
}

/** Stored rows of many txns, each looked up through the primary key (one pair at a time, whatever the plan). */
export async function findAttempts(
  db: Kysely<Database>,
  keys: readonly { acquirerId: string; txnId: string }[],
): Promise<AttemptRow[]> {
  if (keys.length === 0) return [];
  const rows = await sql<AttemptRow>`
    select a.* from unnest(${keys.map((k) => k.acquirerId)}::text[], ${keys.map((k) => k.txnId)}::text[]) as k(acquirer_id, txn_id)
     cross join lateral (select * from attempts x where x.acquirer_id = k.acquirer_id and x.txn_id = k.txn_id) a`.execute(
    db,
  );
  return rows.rows;
}

export interface AttemptRecord {
  acquirerId: string;
  bodyHash: string;
  payment: Payment;
  receivedAtMs: number;
  partition: number;
  decision: Decision;
  decidedBy: "ingress" | "worker";
}

export function recordValues(r: AttemptRecord) {
  const d = r.decision;
  return {
    acquirer_id: r.acquirerId,
    txn_id: r.payment.txnId,
    body_hash: r.bodyHash,
    payer_id: r.payment.payerId,
    merchant_id: r.payment.merchantId,
    amount_fen: r.payment.amountFen,
    paid_at: new Date(r.payment.paidAtMs),
    received_at: new Date(r.receivedAtMs),
    partition: r.partition,
    status: d.status,
    reason: d.status === "rejected" ? d.reason : null,
    campaign_id: d.campaignId ?? null,
    activity_id: d.activityId ?? null,
    tier_id: d.status === "granted" ? d.tierId : null,
    discount_fen: d.status === "granted" ? d.discountFen : null,
    payable_fen: d.status === "granted" ? d.payableFen : null,
    decided_by: r.decidedBy,
  } as const;
}
