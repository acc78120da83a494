import { readFileSync } from "node:fs";
import calculateSlot from "cluster-key-slot";
import { Cluster, Redis } from "ioredis";

export { Cluster, Redis };

/**
 * One ioredis connection (a single Redis, or a Redis Cluster) with quanta's scripts defined.
 * BullMQ needs maxRetriesPerRequest: null on connections that block; we use it everywhere so
 * that a Redis restart makes calls wait (bounded by our own timeouts) rather than fail half-way.
 */
export type QuantaRedis = (Redis | Cluster) & {
  backlogReset(...keysAndArgs: string[]): Promise<number>;
  backlogReserve(...keysAndArgs: (string | number)[]): Promise<number[]>;
  intakeRegister(...keysAndArgs: (string | number)[]): Promise<number[]>;
  leaseRenew(key: string, owner: string, ms: number): Promise<number>;
  leaseRelease(key: string, owner: string): Promise<number>;
};

const lua = (name: string) => readFileSync(new URL(`../lua/${name}.lua`, import.meta.url), "utf8");

/** The URL scheme of a Redis Cluster: `redis-cluster://host:port[,host:port…]`, its seed nodes. */
export const CLUSTER_SCHEME = "redis-cluster:";

export function isClusterUrl(url: string): boolean {
  return url.startsWith(CLUSTER_SCHEME);
}

/** Seed nodes of a cluster URL. */
export function clusterSeeds(url: string): { host: string; port: number }[] {
  const list = url.slice(`${CLUSTER_SCHEME}//`.length).replace(/\/.*$/, "");
  const seeds = list
    .split(",")
    .filter(Boolean)
    .map((hp) => {
      const [host, port] = hp.split(":");
      const n = Number(port);
      if (!host || !Number.isInteger(n) || n <= 0 || n > 65_535)
        throw new Error(`REDIS_URL ${url}: "${hp}" is not host:port`);
      return { host, port: n };
    });
  if (seeds.length === 0) throw new Error(`REDIS_URL ${url}: no seed node (redis-cluster://host:port[,host:port…])`);
  return seeds;
}

export function isCluster(redis: Redis | Cluster): redis is Cluster {
  return (redis as Cluster).isCluster === true;
}

export interface RedisOptions {
  /**
   * Commands issued in the same tick leave in one write: under load one syscall carries many
   * attempts' registry checks. Not for connections handed to BullMQ.
   */
  autoPipelining?: boolean;
  /** A connection that subscribes to sharded channels (on a cluster: one subscriber per master). */
  subscriber?: boolean;
}

export function createRedis(url: string, name: string, options: RedisOptions = {}): QuantaRedis {
  const retryStrategy = (times: number) => Math.min(50 * times, 1_000);
  const redis: Redis | Cluster = isClusterUrl(url)
    ? new Cluster(clusterSeeds(url), {
        // Not on a cluster: ioredis routes an auto-pipelined script with a variable key count by its
        // first argument (the count, not a key), and refuses the pipeline it then builds.
        enableAutoPipelining: false,
        // A sharded channel is served by the master of its slot; ioredis keeps one subscriber per
        // master and moves subscriptions when a replica is promoted.
        shardedSubscribers: options.subscriber ?? false,
        clusterRetryStrategy: retryStrategy,
        // Every read must see the last write (registrations, leases): masters only.
        scaleReads: "master",
        // A failover answers MOVED/CLUSTERDOWN for a few seconds; retry within our own timeouts.
        retryDelayOnClusterDown: 200,
        retryDelayOnFailover: 200,
        retryDelayOnTryAgain: 200,
        maxRedirections: 16,
        redisOptions: { maxRetriesPerRequest: null, enableReadyCheck: true, connectionName: name },
      })
    : new Redis(url, {
        enableAutoPipelining: options.autoPipelining ?? false,
        maxRetriesPerRequest: null,
        enableReadyCheck: true,
        connectionName: name,
        retryStrategy,
      });
  redis.defineCommand("backlogReset", { lua: lua("backlog-reset") });
  redis.defineCommand("backlogReserve", { lua: lua("backlog-reserve") });
  redis.defineCommand("intakeRegister", { lua: lua("intake-register") });
  redis.defineCommand("leaseRenew", { numberOfKeys: 1, lua: lua("lease-renew") });
  redis.defineCommand("leaseRelease", { numberOfKeys: 1, lua: lua("lease-release") });
  // Errors surface on the calls that fail; an unhandled 'error' event must not kill the process.
  redis.on("error", () => undefined);
  return redis as QuantaRedis;
}

/**
 * Groups keys by slot when the connection is a cluster (a script or multi-key command must stay
 * in one slot), or keeps them in one group on a single Redis (one round trip).
 */
export function bySlot<T>(redis: Redis | Cluster, items: readonly T[], tagOf: (item: T) => string): T[][] {
  if (!isCluster(redis)) return items.length === 0 ? [] : [[...items]];
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const tag = tagOf(item);
    const group = groups.get(tag);
    if (group) group.push(item);
    else groups.set(tag, [item]);
  }
  return [...groups.values()];
}

/** The {tag} of a key (the part Redis Cluster hashes), or the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf("{");
  if (open === -1) return key;
  const close = key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/**
 * Subscribers of a sharded channel (PUBSUB SHARDNUMSUB), asked of the master that serves the
 * channel's slot: on a cluster another node would answer 0.
 */
export async function shardSubscribers(redis: QuantaRedis, channel: string): Promise<number> {
  const node = isCluster(redis) ? masterFor(redis, channel) : redis;
  const reply = (await node.call("PUBSUB", "SHARDNUMSUB", channel)) as unknown[];
  return Number(reply[1] ?? 0);
}

/** The Redis Cluster slot (0-16383) of a key or channel: CRC16 of its {hash tag}, as Redis computes it. */
export function slotOf(key: string): number {
  return calculateSlot(key);
}

/** Every key matching a pattern: SCAN of the one Redis, or of every master of a cluster. */
export async function keysMatching(redis: QuantaRedis, pattern: string): Promise<string[]> {
  // A cluster that has not loaded its slots yet knows no master: scanning none would find nothing.
  if (isCluster(redis)) await clusterReady(redis, 10_000);
  const nodes: Redis[] = isCluster(redis) ? redis.nodes("master") : [redis];
  const found: string[] = [];
  for (const node of nodes) {
    let cursor = "0";
    do {
      const [next, batch] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== "0");
  }
  return found.sort();
}

/**
 * Waits until `replicas` replicas of the master that serves `key` have every write this
 * connection sent it (WAIT on that master's own connection in the cluster's pool: WAIT counts the
 * writes of the connection it runs on). Returns how many confirmed within timeoutMs; throws when
 * the master is gone.
 */
export async function waitForReplicas(
  redis: Cluster,
  key: string,
  replicas: number,
  timeoutMs: number,
): Promise<number> {
  const node = masterFor(redis, key);
  return Number(await node.call("WAIT", String(replicas), String(timeoutMs)));
}

/**
 * How many replicas each master of a cluster has connected (INFO replication), refreshed every
 * refreshMs. WAIT for a replica that a master does not have would block that master's connection
 * for the whole timeout on every job: a master left alone by a failover is asked for none.
 */
export class ReplicaCounts {
  private readonly byNode = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Cluster,
    private readonly refreshMs: number,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Treats the master that serves key as having no replica until the next refresh (a WAIT on it timed out). */
  markLagging(key: string): void {
    const node = masterKeyFor(this.redis, key);
    if (node) this.byNode.set(node, 0);
  }

  /** Connected replicas of the master that serves key (0 when unknown). */
  of(key: string): number {
    return this.byNode.get(masterKeyFor(this.redis, key) ?? "") ?? 0;
  }

  private async refresh(): Promise<void> {
    await Promise.all(
      this.redis.nodes("master").map(async (node) => {
        const info = await node.info("replication").catch(() => "");
        const n = /connected_slaves:(\d+)/.exec(info);
        this.byNode.set(nodeKey(node), n ? Number(n[1]) : 0);
      }),
    );
  }
}

/** Resolves once a cluster connection is ready (its slots known); throws after timeoutMs. */
export async function clusterReady(redis: Cluster, timeoutMs: number): Promise<void> {
  if (redis.status === "ready") return;
  if (redis.status === "wait") void redis.connect().catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      reject(new Error(`the Redis Cluster was not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once("ready", onReady);
  });
}

/** A node as the cluster's slot table names it: "host:port". */
const nodeKey = (node: Redis): string => `${node.options.host}:${node.options.port}`;

/** The "host:port" of the master that serves a key's slot, as the cluster last saw it. */
function masterKeyFor(redis: Cluster, key: string): string | undefined {
  return redis.slots[slotOf(key)]?.[0];
}

/**
 * The master that serves a key's (or a sharded channel's) slot: its connection in the cluster's
 * own pool, the one every command for that slot goes through. Throws when none is known.
 */
export function masterFor(redis: Cluster, key: string): Redis {
  const owner = masterKeyFor(redis, key);
  const node = redis.nodes("master").find((n) => nodeKey(n) === owner);
  if (!node) throw new Error(`no master known for slot ${slotOf(key)} (${key})`);
  return node;
}
