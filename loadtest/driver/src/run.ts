import { CallbackClient, type Answer } from "./client.js";
import { PaymentGenerator, type ArrivalKind } from "./payments.js";
import { cumulativeArrivals, rateAt, type Scenario } from "./scenario.js";

/**
 * Open-model replay of a scenario: arrivals are fired on the scenario's
 * clock whether or not earlier answers have come back, so a slow server
 * cannot slow the offered load. An arrival that would pass maxInFlight is
 * dropped and counted (as k6 counts dropped_iterations).
 */
export interface RushOptions {
  baseUrl: string;
  /**
   * Several ingresses behind a load balancer: arrivals go round robin over baseUrl and these, and
   * a resend or a conflicting copy of a txn goes to another ingress than its first copy did.
   */
  moreBaseUrls?: readonly string[];
  acquirerId: string;
  secret: string;
  scenario: Scenario;
  seed: number;
  runId: string;
  connections: number;
  maxInFlight: number;
  onProgress?: (progress: Progress) => void;
  progressEveryMs?: number;
  /**
   * A client to send with, its connections already open (a bench step's warm-up at the step's
   * rate, so that the measured seconds start in the same state as they go on); the caller closes
   * it. Without one, the run opens and closes its own.
   */
  client?: CallbackClient;
}

export interface SentRecord {
  kind: ArrivalKind;
  txnId: string;
  body: string;
  sentAtMs: number;
  ackMs: number;
  status: number;
  answer: unknown;
  /** Which ingress took it: 0 for baseUrl, i for moreBaseUrls[i - 1]. */
  ingress: number;
}

export interface Progress {
  elapsedS: number;
  offeredRatePerS: number;
  sent: number;
  answered: number;
  inFlight: number;
  dropped: number;
  byStatus: Record<string, number>;
}

export interface RushRun {
  records: SentRecord[];
  dropped: number;
  startedAtMs: number;
  endedAtMs: number;
}

export async function runRush(options: RushOptions): Promise<RushRun> {
  const { scenario } = options;
  const client =
    options.client ?? new CallbackClient(options.baseUrl, options.acquirerId, options.secret, options.connections);
  const clients = [
    client,
    ...(options.moreBaseUrls ?? []).map(
      (url) => new CallbackClient(url, options.acquirerId, options.secret, options.connections),
    ),
  ];
  const firstSentTo = new Map<string, number>();
  const generator = new PaymentGenerator(scenario, options.seed, options.runId);
  const due = cumulativeArrivals(scenario);
  const records: SentRecord[] = [];
  const inflight = new Set<Promise<void>>();
  const byStatus: Record<string, number> = {};
  let dropped = 0;
  let sent = 0;
  const wrongSecret = `${options.secret}-forged`;

  const startedAtMs = Date.now();
  const t0 = performance.now();
  let lastProgress = t0;
  const fire = (elapsedS: number) => {
    const arrival = generator.next(elapsedS);
    if (inflight.size >= options.maxInFlight) {
      dropped++;
      return;
    }
    sent++;
    const body = JSON.stringify(arrival.body);
    const sentAt = performance.now();
    const sentAtMs = Date.now();
    let to = sent % clients.length;
    if (clients.length > 1) {
      const first = firstSentTo.get(arrival.body.txnId);
      if (first === undefined) firstSentTo.set(arrival.body.txnId, to);
      else if (first === to) to = (to + 1) % clients.length;
    }
    const p = clients[to]!.postPayment(body, arrival.kind === "forged" ? wrongSecret : options.secret)
      .catch((error: unknown): Answer => ({ status: 0, body: String(error), headers: {} }))
      .then((answer) => {
        const key = String(answer.status);
        byStatus[key] = (byStatus[key] ?? 0) + 1;
        records.push({
          kind: arrival.kind,
          txnId: arrival.body.txnId,
          body,
          sentAtMs,
          ackMs: performance.now() - sentAt,
          status: answer.status,
          answer: answer.body,
          ingress: to,
        });
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };

  try {
    for (;;) {
      const elapsedS = (performance.now() - t0) / 1000;
      if (elapsedS > scenario.durationS) break;
      const target = Math.floor(due(elapsedS));
      while (sent + dropped < target) fire(elapsedS);
      if (options.onProgress && performance.now() - lastProgress >= (options.progressEveryMs ?? 1_000)) {
        lastProgress = performance.now();
        options.onProgress({
          elapsedS,
          offeredRatePerS: rateAt(scenario, elapsedS),
          sent,
          answered: records.length,
          inFlight: inflight.size,
          dropped,
          byStatus: { ...byStatus },
        });
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(inflight);
  } finally {
    if (!options.client) await client.close();
    for (const c of clients.slice(1)) await c.close();
  }
  return { records, dropped, startedAtMs, endedAtMs: Date.now() };
}
