import type { Campaign } from "@quanta/domain";
import type { PayerKey } from "@quanta/contract";
import type { Database, SoldOutTiers } from "@quanta/db";
import type { QuantaRedis } from "@quanta/queue";
import type { Logger } from "@quanta/telemetry";
import type { Kysely } from "kysely";
import type { DecisionWaiter } from "./decision-waiter.js";
import type { Intake } from "./intake.js";

/** Everything a route handler may use; built once per process by startIngress. */
export interface IngressDeps {
  db: Kysely<Database>;
  redis: QuantaRedis;
  secrets: ReadonlyMap<string, string>;
  /** Payer ids are replaced by their pseudonym under this key before anything else sees them. */
  payerKey: PayerKey;
  campaigns: () => readonly Campaign[];
  soldOut: SoldOutTiers;
  intake: Intake;
  waiter: DecisionWaiter;
  log: Logger;
  prefix: string;
  partitionCount: number;
  /** QUANTA_OUTCOME_SETTLE_MS: how long a write that may have landed is retried before the callback is left unanswered. */
  settleMs: number;
  now?: () => number;
}
