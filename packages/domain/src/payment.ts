import type { Fen } from "./money.js";

/** A validated payment callback, as the domain sees it. */
export interface Payment {
  readonly txnId: string;
  readonly payerId: string;
  readonly merchantId: string;
  readonly amountFen: Fen;
  /** The instant of payment, epoch milliseconds. */
  readonly paidAtMs: number;
}
