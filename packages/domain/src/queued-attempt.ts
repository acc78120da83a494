import type { StockRequest } from "./classify.js";
import type { Payment } from "./payment.js";

/** An attempt that needs stock, as the ingress queues it and a worker decides it. */
export interface QueuedAttempt {
  readonly acquirerId: string;
  readonly bodyHash: string;
  readonly payment: Payment;
  readonly receivedAtMs: number;
  readonly partition: number;
  readonly request: StockRequest;
}
