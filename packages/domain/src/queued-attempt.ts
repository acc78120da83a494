import type { StockRequest } from "./classify.js";
import type { Payment } from "./payment.js";

/** An attempt as the ingress received it: whose, which payment, when, and its payer's partition. */
export interface ReceivedAttempt {
  readonly acquirerId: string;
  readonly bodyHash: string;
  readonly payment: Payment;
  readonly receivedAtMs: number;
  readonly partition: number;
}

/** An attempt that needs stock, as the ingress queues it and a worker decides it. */
export interface QueuedAttempt extends ReceivedAttempt {
  readonly request: StockRequest;
}
