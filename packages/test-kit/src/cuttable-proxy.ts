import net from "node:net";

const DROPPED_KEPT_MAX = 1 << 20;

/**
 * A TCP proxy in front of a server (Postgres, Redis) that a test can make lose replies, lose
 * requests, or cut: how a test makes an outcome unknown (the statement ran and its answer never
 * arrived, or it never ran) without touching the server itself.
 */
export class CuttableProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private swallowing = false;
  private droppingRequests = false;
  /** What clients sent since dropRequests() and the server never got (the first 1 MiB). */
  private dropped: Buffer[] = [];
  private droppedBytes = 0;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async up(): Promise<void> {
    this.swallowing = false;
    this.droppingRequests = false;
    if (this.server) return;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.pairs.add(pair);
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on("data", (d: Buffer) => {
        if (!this.droppingRequests) upstream.write(d);
        else if (this.droppedBytes < DROPPED_KEPT_MAX) {
          this.dropped.push(d);
          this.droppedBytes += d.length;
        }
      });
      upstream.on("data", (d) => {
        if (!this.swallowing) client.write(d);
      });
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** From now on the server's replies are dropped: statements run, their answers never arrive. */
  swallowReplies(): void {
    this.swallowing = true;
  }

  /** From now on what clients send is dropped: statements never reach the server, no answer comes. */
  dropRequests(): void {
    this.droppingRequests = true;
    this.dropped = [];
    this.droppedBytes = 0;
  }

  /** Whether a dropped request carried `text` (a statement's parameter, say): it was sent, and lost. */
  droppedRequestHolds(text: string): boolean {
    return Buffer.concat(this.dropped).includes(text);
  }

  /** Every connection cut, and new ones refused (ECONNREFUSED) until up(). */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    if (server) await new Promise((r) => server.close(r));
  }
}
