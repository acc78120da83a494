import type { Scenario } from "./scenario.js";

/** A small seeded PRNG (mulberry32) so that a run can be replayed exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type ArrivalKind = "payment" | "resend" | "conflict" | "forged";

export interface PaymentBody {
  txnId: string;
  payerId: string;
  merchantId: string;
  amountFen: number;
  paidAt: string;
}

export interface Arrival {
  kind: ArrivalKind;
  body: PaymentBody;
}

/**
 * Turns the scenario's shares into concrete callbacks. New payments draw a
 * payer uniformly from the population (so some pay twice), a merchant
 * (flagship, designated or not listed) and an amount from the spend mix.
 * Resends repeat an earlier body byte for byte; conflicts reuse an earlier
 * txnId with another amount; forged ones are signed with a wrong secret.
 */
export class PaymentGenerator {
  private readonly random: () => number;
  private readonly sent: PaymentBody[] = [];
  private seq = 0;
  private readonly totalWeight: number;
  private readonly openingMs: number;

  constructor(
    private readonly scenario: Scenario,
    seed: number,
    private readonly runId: string,
  ) {
    this.random = prng(seed);
    this.totalWeight = scenario.spendMixFen.reduce((sum, b) => sum + b.weight, 0);
    this.openingMs = Date.parse(scenario.openingAt);
  }

  next(elapsedS: number): Arrival {
    const r = this.random();
    const s = this.scenario;
    if (this.sent.length > 0 && r < s.resendShare) return { kind: "resend", body: this.pickSent() };
    if (this.sent.length > 0 && r < s.resendShare + s.conflictShare) {
      const earlier = this.pickSent();
      return { kind: "conflict", body: { ...earlier, amountFen: earlier.amountFen + 1 } };
    }
    if (r < s.resendShare + s.conflictShare + s.forgedShare)
      return { kind: "forged", body: this.fresh(elapsedS, false) };
    const body = this.fresh(elapsedS, true);
    return { kind: "payment", body };
  }

  private fresh(elapsedS: number, remember: boolean): PaymentBody {
    const s = this.scenario;
    const payer = Math.floor(this.random() * s.payers);
    const m = this.random();
    const merchantId =
      m < s.merchants.ineligibleShare
        ? "M-NOT-LISTED"
        : m < s.merchants.ineligibleShare + s.merchants.flagshipShare
          ? s.merchants.flagship
          : `${s.merchants.designatedPrefix}${String(1 + Math.floor(this.random() * s.merchants.designatedCount)).padStart(4, "0")}`;
    const outside = this.random() < s.outsideWindowShare;
    const paidAtMs = outside ? this.openingMs - 3_600_000 : this.openingMs + Math.floor(elapsedS * 1000);
    const body: PaymentBody = {
      txnId: `${this.runId}-${(this.seq++).toString(36)}`,
      payerId: `P${String(payer).padStart(8, "0")}`,
      merchantId,
      amountFen: this.amount(),
      paidAt: toOffsetIso(paidAtMs, "+08:00"),
    };
    if (remember) {
      // Keep a bounded sample of recent bodies for resends and conflicts.
      if (this.sent.length < 10_000) this.sent.push(body);
      else this.sent[Math.floor(this.random() * this.sent.length)] = body;
    }
    return body;
  }

  private pickSent(): PaymentBody {
    return this.sent[Math.floor(this.random() * this.sent.length)]!;
  }

  private amount(): number {
    let pick = this.random() * this.totalWeight;
    for (const bucket of this.scenario.spendMixFen) {
      pick -= bucket.weight;
      if (pick <= 0) return bucket.fromFen + Math.floor(this.random() * (bucket.toFen - bucket.fromFen + 1));
    }
    const last = this.scenario.spendMixFen.at(-1)!;
    return last.toFen;
  }
}

export function toOffsetIso(ms: number, offset: "+08:00"): string {
  const shifted = new Date(ms + 8 * 3_600_000);
  return shifted.toISOString().replace(/\.\d{3}Z$/, offset);
}
