import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { track } from "./children.js";
import { freePort } from "./private-redis.js";

/**
 * A Redis Cluster of our own on 127.0.0.1: `masters` masters with `replicas` replicas each, every
 * node a `redis-server --cluster-enabled yes` started with the shipped infra/redis/redis.conf
 * (AOF with appendfsync always, as the single Redis), joined by `redis-cli --cluster create`.
 * For `npm run rush -- --redis-cluster`, `npm run bench -- --redis-cluster`, the cluster test
 * project and the master-kill fault.
 *
 * States of a node: started -> joined (cluster_state ok everywhere) -> killed (SIGKILL; its
 * replica is promoted after cluster-node-timeout) -> stopped. Trade-off: a short node timeout
 * (2 s) so a failover happens within a test, where production keeps Redis's 15 s to ride out
 * pauses without needless failovers.
 */
const REDIS_CONF = fileURLToPath(new URL("../../../infra/redis/redis.conf", import.meta.url));
const NODE_TIMEOUT_MS = 2_000;
/** Ports tried per node before the cluster gives up starting (a port found free may be taken). */
const NODE_START_TRIES = 5;

export interface ClusterNode {
  port: number;
  child: ChildProcess;
}

export class PrivateRedisCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "quanta-redis-cluster-"));
  readonly nodes: ClusterNode[] = [];

  private constructor(
    readonly masters: number,
    readonly replicas: number,
  ) {}

  /** Starts the nodes, joins them and waits until every node says cluster_state:ok. */
  static async start(options: { masters?: number; replicas?: number } = {}): Promise<PrivateRedisCluster> {
    const cluster = new PrivateRedisCluster(options.masters ?? 3, options.replicas ?? 1);
    try {
      await cluster.boot();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** The URL quanta takes (REDIS_URL): every node a seed. */
  get url(): string {
    return `redis-cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(",")}`;
  }

  private async boot(): Promise<void> {
    const count = this.masters * (1 + this.replicas);
    if (this.masters < 3) throw new Error("a Redis Cluster needs at least 3 masters");
    for (let i = 0; i < count; i++) this.nodes.push(await this.startNode());
    const create = spawnSync(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...this.nodes.map((n) => `127.0.0.1:${n.port}`),
        "--cluster-replicas",
        String(this.replicas),
        "--cluster-yes",
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await this.waitHealthy(30_000);
  }

  /**
   * One node on a free port, answering PING. A port found free can be taken before redis-server
   * binds it (or its cluster bus, port + 10000, is in use): the node exits, and another port is
   * tried, up to NODE_START_TRIES times.
   */
  private async startNode(): Promise<ClusterNode> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const dir = join(this.dir, String(port));
      mkdirSync(dir, { recursive: true });
      const child = track(
        spawn(
          "redis-server",
          [
            REDIS_CONF,
            "--port",
            String(port),
            "--dir",
            dir,
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "no",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            String(NODE_TIMEOUT_MS),
          ],
          { stdio: "ignore" },
        ),
      );
      const node = { port, child };
      try {
        await waitForPing(node);
        return node;
      } catch (error) {
        child.kill("SIGKILL");
        if (attempt >= NODE_START_TRIES) throw error;
      }
    }
  }

  /** Every live node says cluster_state:ok and every slot is served by a live master. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(this.live().map((n) => info(n.port, "CLUSTER", "INFO").catch(() => "")));
      if (states.length > 0 && states.every((s) => /cluster_state:ok/.test(s) && /cluster_slots_ok:16384/.test(s)))
        return;
      if (Date.now() > deadline) throw new Error(`the Redis Cluster did not become healthy within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private live(): ClusterNode[] {
    return this.nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  }

  /** The live masters, each with the slot ranges it serves (CLUSTER SHARDS of a live node). */
  async masterPorts(): Promise<{ port: number; slots: [number, number][] }[]> {
    const any = this.live()[0];
    if (!any) return [];
    const raw = (await command(any.port, "CLUSTER", "SLOTS")) as [number, number, [string, number, string]][];
    const byPort = new Map<number, [number, number][]>();
    for (const [from, to, master] of raw) {
      const list = byPort.get(master[1]) ?? [];
      list.push([from, to]);
      byPort.set(master[1], list);
    }
    return [...byPort].map(([port, slots]) => ({ port, slots })).sort((a, b) => a.port - b.port);
  }

  /** The port of the master that serves a slot. */
  async masterOf(slot: number): Promise<number> {
    const master = (await this.masterPorts()).find((m) => m.slots.some(([from, to]) => slot >= from && slot <= to));
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return master.port;
  }

  /** SIGKILL of one node: whatever it had not written to its AOF is gone; its replica takes over. */
  async kill(port: number): Promise<void> {
    const node = this.nodes.find((n) => n.port === port);
    if (!node || node.child.exitCode !== null || node.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      node.child.once("exit", () => resolve());
      node.child.kill("SIGKILL");
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n.port)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** PING until PONG; gives up at once when the process exited (it could not bind its ports). */
async function waitForPing({ port, child }: ClusterNode): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`redis-server on port ${port} exited (${child.exitCode ?? child.signalCode}) before it answered`);
    if ((await command(port, "PING").catch(() => undefined)) === "PONG") return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`redis-server on port ${port} did not start (is redis-server on PATH?)`);
}

async function command(port: number, ...args: string[]): Promise<unknown> {
  const probe = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on("error", () => undefined);
  try {
    await probe.connect();
    return await probe.call(args[0]!, ...args.slice(1));
  } finally {
    probe.disconnect();
  }
}

async function info(port: number, ...args: string[]): Promise<string> {
  return String(await command(port, ...args));
}
