import { registry as defaultRegistry } from "./metrics.js";

/**
 * The three routes every service serves: /healthz (process alive), /readyz
 * (its dependencies answer), /metrics (Prometheus text). Structural types
 * keep this package free of any HTTP framework.
 */
interface Reply {
  code(status: number): Reply;
  type(contentType: string): Reply;
  send(body: unknown): unknown;
}
interface RoutesHost {
  get(path: string, handler: (request: unknown, reply: Reply) => Promise<unknown>): unknown;
}

export interface OpsRoutesOptions {
  /** Resolves when Postgres and Redis answer; rejects otherwise. */
  ready: () => Promise<unknown>;
  /** Extra fields for /healthz (e.g. the partitions a worker owns). */
  health?: () => Record<string, unknown>;
  /** The Prometheus text; defaults to the shared registry. */
  metrics?: () => Promise<string>;
  contentType?: string;
}

export function registerOpsRoutes(app: RoutesHost, options: OpsRoutesOptions): void {
  app.get("/healthz", async () => ({ status: "ok", ...options.health?.() }));
  app.get("/readyz", async (_request, reply) => {
    try {
      await options.ready();
      return { status: "ready" };
    } catch (error) {
      return reply.code(503).send({ status: "not_ready", message: (error as Error).message });
    }
  });
  app.get("/metrics", async (_request, reply) =>
    reply
      .type(options.contentType ?? defaultRegistry.contentType)
      .send(await (options.metrics ?? (() => defaultRegistry.metrics()))()),
  );
}

/** Runs close() once on SIGTERM or SIGINT, then exits 0 (1 if close failed). */
export function closeOnSignal(close: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
