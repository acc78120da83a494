import { keys, shardSubscribers, type DecisionMessage, type QuantaRedis } from "@quanta/queue";
import type { Logger } from "@quanta/telemetry";

/**
 * Holds queued callbacks open until their decision arrives (what the ingress
 * decides itself needs no waiter; the intake registers one per queued attempt
 * just before adding its job). One Redis subscription
 * per ingress process (never one per attempt): workers publish one message
 * per batch to the channel named in the job.
 *
 * States of a waiter: waiting -> decided | conflict | timed out. A waiter
 * that times out is answered 202 by its caller; the decision still lands in
 * Postgres and is served by GET and by replays.
 */
export type WaitResult = { kind: "decided"; body: unknown } | { kind: "conflict" } | { kind: "timeout" };

interface Waiter {
  resolve: (result: WaitResult) => void;
  timer: NodeJS.Timeout;
}

export class DecisionWaiter {
  private readonly waiters = new Map<string, Waiter[]>();
  private watchdog: NodeJS.Timeout | undefined;
  readonly channel: string;

  constructor(
    private readonly subscriber: QuantaRedis,
    prefix: string,
    readonly ingressId: string,
    private readonly log: Logger,
    private readonly waitersMax: number,
  ) {
    this.channel = keys.decisions(prefix, ingressId);
  }

  /**
   * Subscribes (SSUBSCRIBE: a sharded channel, served by one master of a cluster), and stays
   * subscribed: a subscription a reconnect lost (the connection dropping right after SSUBSCRIBE,
   * before its reply) is restored on every 'ready' and by a watchdog that asks Redis how many
   * subscribers the channel has, using the ordinary connection (docs/decisions/0016).
   */
  async start(commands: QuantaRedis, watchdogMs = 1_000): Promise<void> {
    this.subscriber.on("ready", () => {
      this.subscriber.ssubscribe(this.channel).catch((error) => this.log.warn({ err: error }, "resubscribe failed"));
    });
    this.watchdog = setInterval(() => {
      shardSubscribers(commands, this.channel)
        .then(async (count) => {
          if (count === 0) {
            this.log.warn({ channel: this.channel }, "decision channel had no subscriber; subscribing again");
            await this.subscriber.ssubscribe(this.channel);
          }
        })
        .catch(() => undefined);
    }, watchdogMs);
    this.watchdog.unref();
    this.subscriber.on("smessage", (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        this.deliver(JSON.parse(message) as DecisionMessage);
      } catch (error) {
        this.log.error({ err: error }, "unreadable decision message");
      }
    });
    await this.subscriber.ssubscribe(this.channel);
  }

  stop(): void {
    if (this.watchdog) clearInterval(this.watchdog);
  }

  get size(): number {
    return this.waiters.size;
  }

  /** False when too many callbacks are already held open (the caller answers 503). */
  hasRoom(): boolean {
    return this.waiters.size < this.waitersMax;
  }

  /** Waits for the decision of one callback; cancel() withdraws this waiter only (others of the key keep waiting). */
  wait(key: string, timeoutMs: number): { result: Promise<WaitResult>; cancel: () => void } {
    let waiter!: Waiter;
    const result = new Promise<WaitResult>((resolve) => {
      waiter = {
        resolve,
        timer: setTimeout(() => {
          this.remove(key, waiter);
          resolve({ kind: "timeout" });
        }, timeoutMs),
      };
      const list = this.waiters.get(key);
      if (list) list.push(waiter);
      else this.waiters.set(key, [waiter]);
    });
    return {
      result,
      cancel: () => {
        clearTimeout(waiter.timer);
        this.remove(key, waiter);
        waiter.resolve({ kind: "timeout" });
      },
    };
  }

  /** Answers every waiter of a key now (used when the decision is known without the queue). */
  settle(key: string, result: WaitResult): void {
    const list = this.waiters.get(key);
    if (!list) return;
    this.waiters.delete(key);
    for (const w of list) {
      clearTimeout(w.timer);
      w.resolve(result);
    }
  }

  private deliver(message: DecisionMessage): void {
    for (const [key, body] of message.answers)
      this.settle(key, body === null ? { kind: "conflict" } : { kind: "decided", body });
  }

  private remove(key: string, waiter: Waiter): void {
    const list = this.waiters.get(key);
    if (!list) return;
    const rest = list.filter((w) => w !== waiter);
    if (rest.length === 0) this.waiters.delete(key);
    else this.waiters.set(key, rest);
  }
}
