import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { track } from "./children.js";

/**
 * A Redis of our own, on a free port and a fresh data directory, started with the shipped
 * infra/redis/redis.conf (AOF with appendfsync always, noeviction): what a campaign runs on.
 * Used by the fault suite (SIGKILL and restart from the AOF) and by `npm run bench` to measure
 * what durability costs (system quanta-aof).
 */
const REDIS_CONF = fileURLToPath(new URL("../../../infra/redis/redis.conf", import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export class PrivateRedis {
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), "quanta-redis-"));

  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts (or restarts, replaying the AOF in its directory) and waits until it answers PING. */
  async start(): Promise<void> {
    this.child = track(
      spawn(
        "redis-server",
        [REDIS_CONF, "--port", String(this.port), "--dir", this.dir, "--bind", "127.0.0.1", "--daemonize", "no"],
        { stdio: "ignore" },
      ),
    );
    for (let i = 0; i < 100; i++) {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on("error", () => undefined);
      const ok = await probe.connect().then(
        () => probe.ping(),
        () => undefined,
      );
      probe.disconnect();
      if (ok === "PONG") return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`private redis on port ${this.port} did not start (is redis-server on PATH?)`);
  }

  /** SIGKILL: whatever Redis had not written to its AOF is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
