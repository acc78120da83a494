// Payment bodies for the seed campaign, drawn the way the Node driver draws them
// (loadtest/driver/src/payments.ts): a seeded mulberry32 PRNG per VU, payers uniform over the
// population (so some pay twice and meet already_redeemed), flagship / designated / unlisted
// merchants, amounts from the spend mix, a few payments outside the window, and a share of
// resends (same body, same txnId), conflicts (same txnId, another amount) and forged signatures.

/** @typedef {import("./scenario.js").Scenario} Scenario */
/** @typedef {{ txnId: string, payerId: string, merchantId: string, amountFen: number, paidAt: string }} PaymentBody */
/** @typedef {"payment" | "resend" | "conflict" | "forged"} ArrivalKind */

/** @param {number} seed */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ISO 8601 with the +08:00 offset the campaign is written in. @param {number} ms */
export function toOffsetIso(ms) {
  return new Date(ms + 8 * 3600000).toISOString().replace(/\.\d{3}Z$/, "+08:00");
}

const RECENT_MAX = 1000;

export class PaymentGenerator {
  /**
   * @param {Scenario} scenario
   * @param {{ seed: number, txnPrefix: string, payers?: number, paidAtMs?: () => number }} options
   *   paidAtMs: the payment instant; default the opening moment plus the time since the VU began.
   */
  constructor(scenario, options) {
    this.s = scenario;
    this.random = prng(options.seed);
    this.txnPrefix = options.txnPrefix;
    this.payers = options.payers ?? scenario.payers;
    this.totalWeight = scenario.spendMixFen.reduce((sum, b) => sum + b.weight, 0);
    this.openingMs = Date.parse(scenario.openingAt);
    const started = Date.now();
    this.paidAtMs = options.paidAtMs ?? (() => this.openingMs + (Date.now() - started));
    /** @type {PaymentBody[]} */
    this.recent = [];
    this.seq = 0;
  }

  /** @returns {{ kind: ArrivalKind, body: PaymentBody }} */
  next() {
    const s = this.s;
    const r = this.random();
    if (this.recent.length > 0 && r < s.resendShare) return { kind: "resend", body: this.pickRecent() };
    if (this.recent.length > 0 && r < s.resendShare + s.conflictShare) {
      const earlier = this.pickRecent();
      return { kind: "conflict", body: Object.assign({}, earlier, { amountFen: earlier.amountFen + 1 }) };
    }
    if (r < s.resendShare + s.conflictShare + s.forgedShare) return { kind: "forged", body: this.fresh(false) };
    return { kind: "payment", body: this.fresh(true) };
  }

  /**
   * A new payment. @param {boolean} remember keep it for later resends and conflicts
   * @param {Partial<PaymentBody>} [over]
   * @returns {PaymentBody}
   */
  fresh(remember, over = {}) {
    const s = this.s;
    const payer = Math.floor(this.random() * this.payers);
    const m = this.random();
    const merchantId =
      m < s.merchants.ineligibleShare
        ? "M-NOT-LISTED"
        : m < s.merchants.ineligibleShare + s.merchants.flagshipShare
          ? s.merchants.flagship
          : `${s.merchants.designatedPrefix}${String(1 + Math.floor(this.random() * s.merchants.designatedCount)).padStart(4, "0")}`;
    const outside = this.random() < s.outsideWindowShare;
    const body = Object.assign(
      {
        txnId: `${this.txnPrefix}-${(this.seq++).toString(36)}`,
        payerId: `P${String(payer).padStart(8, "0")}`,
        merchantId,
        amountFen: this.amount(),
        paidAt: toOffsetIso(outside ? this.openingMs - 3600000 : this.paidAtMs()),
      },
      over,
    );
    if (remember) {
      if (this.recent.length < RECENT_MAX) this.recent.push(body);
      else this.recent[Math.floor(this.random() * RECENT_MAX)] = body;
    }
    return body;
  }

  pickRecent() {
    return /** @type {PaymentBody} */ (this.recent[Math.floor(this.random() * this.recent.length)]);
  }

  amount() {
    let pick = this.random() * this.totalWeight;
    for (const bucket of this.s.spendMixFen) {
      pick -= bucket.weight;
      if (pick <= 0) return bucket.fromFen + Math.floor(this.random() * (bucket.toFen - bucket.fromFen + 1));
    }
    return this.s.spendMixFen[this.s.spendMixFen.length - 1].toFen;
  }
}
