import { randomBytes } from "node:crypto";
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { track } from "./children.js";
import { waitForOwners, type Owners } from "./owners.js";

/**
 * Starts quanta's services as child processes (the shape of a deployment on
 * one machine) and stops everything it started. Used by `quanta rush` and by
 * the integration tests that need real separate processes to kill.
 */
const BASELINES = fileURLToPath(new URL("../../../loadtest/baselines/dist/main.js", import.meta.url));
export const SERVICE_ENTRY = {
  ingress: [fileURLToPath(new URL("../../../services/ingress/dist/main.js", import.meta.url))],
  worker: [fileURLToPath(new URL("../../../services/worker/dist/main.js", import.meta.url))],
  exporter: [fileURLToPath(new URL("../../../services/exporter/dist/main.js", import.meta.url))],
  floor: [BASELINES, "floor"],
  direct: [BASELINES, "direct"],
} as const;

export interface ServiceProcess {
  kind: keyof typeof SERVICE_ENTRY;
  child: ChildProcess;
  port: number;
  id: string;
}

export async function startService(
  kind: keyof typeof SERVICE_ENTRY,
  env: NodeJS.ProcessEnv,
  options: { readyTimeoutMs?: number; stdio?: "inherit" | "ignore" | "pipe" } = {},
): Promise<ServiceProcess> {
  // QUANTA_PROFILE_DIR=dir writes a V8 CPU profile of every service process on exit (for --cpu-prof analysis).
  const profileDir = env.QUANTA_PROFILE_DIR;
  const execArgv = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  const [entry, ...args] = SERVICE_ENTRY[kind];
  const child = track(
    fork(entry, args, {
      execArgv,
      env,
      stdio: ["ignore", options.stdio ?? "ignore", options.stdio === "ignore" ? "ignore" : "inherit", "ipc"],
    }),
  );
  const timeoutMs = options.readyTimeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${kind} did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${kind} exited before it was ready (code ${code}, signal ${signal})`));
    });
    child.on("message", (message: { ready?: string; port?: number; id?: string }) => {
      if (message?.ready !== kind) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve({ kind, child, port: message.port ?? 0, id: message.id ?? "" });
    });
  });
}

/**
 * quanta as one machine deploys it: `ingresses` ingresses (default one) and `workers` workers on
 * env, started into `services` (so that the caller's cleanup stops whatever did start), and
 * settled with every partition owned, each worker its fair share, as a deployment is before an
 * opening minute. `ingress` and `baseUrl` are the first ingress's.
 */
export async function startQuanta(
  env: NodeJS.ProcessEnv,
  options: {
    ingresses?: number;
    workers: number;
    partitions: number;
    services: ServiceProcess[];
    stdio?: "inherit" | "ignore";
    settleTimeoutMs?: number;
  },
): Promise<{
  ingress: ServiceProcess;
  baseUrl: string;
  ingresses: ServiceProcess[];
  baseUrls: string[];
  owners: Owners;
}> {
  const ingresses: ServiceProcess[] = [];
  for (let i = 0; i < (options.ingresses ?? 1); i++) {
    ingresses.push(await startService("ingress", env, { stdio: options.stdio }));
    options.services.push(ingresses[i]!);
  }
  const ingress = ingresses[0]!;
  const workers: ServiceProcess[] = [];
  for (let i = 0; i < options.workers; i++) {
    workers.push(await startService("worker", env, { stdio: options.stdio }));
    options.services.push(workers[i]!);
  }
  const owners = await waitForOwners(workers, options.partitions, options.settleTimeoutMs ?? 30_000);
  const baseUrls = ingresses.map((s) => `http://127.0.0.1:${s.port}`);
  return { ingress, baseUrl: baseUrls[0]!, ingresses, baseUrls, owners };
}

/** SIGTERM, then SIGKILL after graceMs. Resolves when the process has exited. */
export async function stopService(service: ServiceProcess, graceMs = 10_000): Promise<void> {
  const { child } = service;
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export function killService(service: ServiceProcess): Promise<void> {
  const { child } = service;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/**
 * The environment of a private deployment's services: its database, its
 * Redis prefix, its acquirers, and ports chosen by the OS (reported back
 * over IPC when each service is ready).
 */
export function serviceEnv(options: {
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
  acquirerSecrets: string;
  partitions: number;
  logLevel?: string;
  /** `id:secret`; a fresh random key per stack when not given. */
  payerKey?: string;
}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    QUANTA_PAYER_KEY: options.payerKey ?? `t1:${randomBytes(24).toString("hex")}`,
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    QUANTA_REDIS_PREFIX: options.prefix,
    QUANTA_ACQUIRER_SECRETS: options.acquirerSecrets,
    QUANTA_PARTITIONS: String(options.partitions),
    PORT: "0",
    QUANTA_WORKER_PORT: "0",
    LOG_LEVEL: options.logLevel ?? process.env.LOG_LEVEL ?? "warn",
  };
}
