import type pg from "pg";
import { classify, partitionOf, type Campaign, type Decision } from "@quanta/domain";
import { decisionBody, paymentHash } from "@quanta/contract";
import { inTransaction, recordValues, rowDecision, withRetry, type AttemptRow } from "@quanta/db";
import type { Decide } from "./contract-server.js";

/**
 * The obvious design, as the baseline to beat: from the HTTP handler, one
 * Postgres transaction per callback that decrements the tier's single stock
 * row (`UPDATE … SET pool = pool - 1 WHERE … AND pool > 0`) and inserts the
 * decision. Same contract, same schema and constraints as quanta, all stock
 * in the pool row (no partition shares), so every grant of a tier contends
 * on one hot row.
 */
const STORED = `select * from attempts where acquirer_id = $1 and txn_id = $2`;
const HOLDER = `select 1 from attempts where status = 'granted' and payer_id = $1 and campaign_id = $2 and activity_id = $3`;
const TAKE = `update tiers set pool = pool - 1 where campaign_id = $1 and id = $2 and pool > 0 returning discount_fen`;

export function directDecide(pool: pg.Pool, campaigns: readonly Campaign[]): Decide {
  return async (acquirerId, payment, receivedAtMs) => {
    const bodyHash = paymentHash(payment);
    const c = classify(payment, campaigns);
    const row = await withRetry(() =>
      inTransaction(pool, async (client) => {
        const stored = await client.query<AttemptRow>({
          name: "direct_stored",
          text: STORED,
          values: [acquirerId, payment.txnId],
        });
        if (stored.rows[0]) return stored.rows[0];
        let decision: Decision;
        if (c.kind === "decided") decision = c.decision;
        else {
          const { campaignId, activityId, tierIds } = c.request;
          const held = await client.query({
            name: "direct_holder",
            text: HOLDER,
            values: [payment.payerId, campaignId, activityId],
          });
          decision = {
            status: "rejected",
            reason: held.rowCount ? "already_redeemed" : "sold_out",
            campaignId,
            activityId,
          };
          if (!held.rowCount) {
            for (const tierId of tierIds) {
              const took = await client.query<{ discount_fen: number }>({
                name: "direct_take",
                text: TAKE,
                values: [campaignId, tierId],
              });
              const discount = took.rows[0]?.discount_fen;
              if (discount !== undefined) {
                decision = {
                  status: "granted",
                  campaignId,
                  activityId,
                  tierId,
                  discountFen: discount,
                  payableFen: payment.amountFen - discount,
                };
                break;
              }
            }
          }
        }
        const v = recordValues({
          acquirerId,
          bodyHash,
          payment,
          receivedAtMs,
          partition: partitionOf(payment.payerId, 1),
          decision,
          decidedBy: "worker",
        });
        const cols = Object.keys(v);
        const inserted = await client.query<AttemptRow>(
          `insert into attempts (${cols.join(", ")}) values (${cols.map((_, i) => `$${i + 1}`).join(", ")}) returning *`,
          Object.values(v),
        );
        return inserted.rows[0]!;
      }),
    );
    if (row.body_hash !== bodyHash) return { status: 409, body: { error: { code: "txn_conflict" } } };
    return { status: 200, body: decisionBody(payment.txnId, rowDecision(row)) };
  };
}

/** Moves every tier's stock into its pool row: the direct design has no partition shares. */
export async function poolAllStock(pool: pg.Pool): Promise<void> {
  await pool.query(`update tiers set pool = quota`);
  await pool.query(`update tier_shares set remaining = 0`);
}
