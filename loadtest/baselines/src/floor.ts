import { classify, type Campaign } from "@quanta/domain";
import { decisionBody } from "@quanta/contract";
import type { Decide } from "./contract-server.js";

/**
 * The floor: verify, parse, classify in memory and answer, storing nothing.
 * Nothing that keeps the invariants can be faster; it is what quanta's
 * ingress costs before the queue and Postgres. Stock is not consulted, so
 * every qualifying payment is answered as if its best tier were granted.
 */
export function floorDecide(campaigns: readonly Campaign[]): Decide {
  return async (_acquirerId, payment) => {
    const c = classify(payment, campaigns);
    if (c.kind === "decided") return { status: 200, body: decisionBody(payment.txnId, c.decision) };
    const campaign = campaigns.find((x) => x.id === c.request.campaignId)!;
    const tier = campaign.activities
      .find((a) => a.id === c.request.activityId)!
      .tiers.find((t) => t.id === c.request.tierIds[0])!;
    return {
      status: 200,
      body: decisionBody(payment.txnId, {
        status: "granted",
        campaignId: campaign.id,
        activityId: c.request.activityId,
        tierId: tier.id,
        discountFen: tier.discountFen,
        payableFen: payment.amountFen - tier.discountFen,
      }),
    };
  };
}
