import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deadlocksOnceQuiet, verifyDatabaseInvariants } from "@quanta/db";
import { SEED_CAMPAIGN_PATH, readCampaignFile } from "./setup.js";
import { startQuanta, stopService, type ServiceProcess } from "./stack.js";
import { closeRunWorld, databaseUrlNamed, openRunWorld, type OwnRedis, type RunWorld } from "./run-world.js";

/**
 * `quanta k6 SCRIPT [k6 options]` (npm run k6 -- SCRIPT …): one k6 script, in real k6, against a
 * private stack deployed as `npm run rush` deploys it (a fresh database quanta_k6 with the seed
 * campaign, its own Redis prefix, one ingress and two workers), then the invariants checked in
 * the database and everything stopped and removed.
 * Exit code (judge()): 99 when a promise broke (the contract, resends, 409s) or, with BUDGETS=gate
 * (k6's default here), a budget was over (latency, 503s, 202s, dropped arrivals), except in a script
 * that looks for that (breakpoint: a budget over is the breakpoint found); 1 when an invariant or
 * the no-deadlock check failed; k6's own code when k6 itself failed (a script error, a signal).
 * Writes k6's summary (JSON, a short Markdown report, the verdict) and its web dashboard as a
 * self-contained HTML page to k6-results/.
 * k6 is $K6, else ../shared/tools/k6 beside the repository, else `k6` on the PATH; it must be at
 * least MIN_K6 (the version the suite is run with here), unless K6_SKIP_VERSION_CHECK=1.
 */
export const MIN_K6 = "2.2.0";
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SCRIPTS = resolve(ROOT, "loadtest/k6");

export interface K6Settings {
  script: string;
  k6Args: readonly string[];
  databaseUrl: string;
  redisUrl: string;
  partitions: number;
  workers: number;
  out: (line: string) => void;
}

export function k6Binary(): string {
  if (process.env.K6) return process.env.K6;
  const shared = resolve(ROOT, "../shared/tools/k6");
  return existsSync(shared) ? shared : "k6";
}

/** k6's version as [major, minor, patch], or a message saying why it cannot be used. */
export function k6Version(binary: string): { version: number[] } | { problem: string } {
  const run = spawnSync(binary, ["version"], { encoding: "utf8" });
  if (run.error) return { problem: `cannot run k6 at ${binary} (${run.error.message}); set K6 to its path` };
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(run.stdout);
  if (!m)
    return { problem: `cannot read a version from \`${binary} version\`: ${run.stdout.trim() || run.stderr.trim()}` };
  return { version: [Number(m[1]), Number(m[2]), Number(m[3])] };
}

export function atLeast(version: readonly number[], minimum: string): boolean {
  const min = minimum.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((version[i] ?? 0) !== (min[i] ?? 0)) return (version[i] ?? 0) > (min[i] ?? 0);
  return true;
}

export async function runK6(settings: K6Settings): Promise<number> {
  const { out } = settings;
  const scriptPath = scriptPathOf(settings.script);
  const name = basename(scriptPath, ".js");
  const { binary, version } = usableK6();
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const results = resolve(ROOT, "k6-results");
  mkdirSync(results, { recursive: true });
  const html = resolve(results, `${name}-${stamp}-report.html`);
  const stack = await openK6Stack(settings);
  try {
    const { baseUrl } = await startQuanta(stack.world.env, {
      workers: settings.workers,
      partitions: settings.partitions,
      services: stack.services,
    });
    out(
      `quanta k6 ${name}: k6 v${version.join(".")} (${binary}) against ${baseUrl} (one ingress, ${settings.workers} workers, ${settings.partitions} partitions, database ${stack.world.databaseUrl.replace(/\/\/[^@]*@/, "//")})`,
    );
    const args = [
      "run",
      "-e",
      `BASE_URL=${baseUrl}`,
      "-e",
      `ACQUIRER_ID=${stack.acquirerId}`,
      "-e",
      `ACQUIRER_SECRET=${stack.secret}`,
      "-e",
      `SUMMARY_DIR=${results}`,
      "-e",
      `SUMMARY_STAMP=${stamp}`,
      ...settings.k6Args,
      scriptPath,
    ];
    const code = await spawnK6(binary, args, html);
    for (const s of stack.services) await stopService(s);
    const judged = judge(code, readVerdict(resolve(results, `${name}-${stamp}-verdict.json`)));
    return await verdictInDatabase(stack, judged, name, html, out);
  } finally {
    await closeK6Stack(stack);
  }
}

/** The script in loadtest/k6, else the path as given; an error naming the suite when neither exists. */
function scriptPathOf(script: string): string {
  const scriptPath = existsSync(resolve(SCRIPTS, script)) ? resolve(SCRIPTS, script) : resolve(script);
  if (!existsSync(scriptPath))
    throw new Error(
      `no k6 script ${script} (the suite: ${["smoke", "rush-0913", "spike", "soak", "breakpoint"].map((s) => `${s}.js`).join(", ")})`,
    );
  return scriptPath;
}

/** k6's binary and version, or an error saying why it cannot be used (missing, or older than MIN_K6). */
function usableK6(): { binary: string; version: number[] } {
  const binary = k6Binary();
  const seen = k6Version(binary);
  if ("problem" in seen) throw new Error(seen.problem);
  if (!atLeast(seen.version, MIN_K6) && process.env.K6_SKIP_VERSION_CHECK !== "1") {
    throw new Error(
      `needs k6 >= ${MIN_K6} (${binary} is v${seen.version.join(".")}); set K6 to a newer one, or K6_SKIP_VERSION_CHECK=1 to try anyway`,
    );
  }
  return { binary, version: seen.version };
}

/** The private stack's world (database with the seed campaign, Redis prefix) and acquirer; services start empty. */
interface K6Stack {
  world: RunWorld<OwnRedis>;
  acquirerId: string;
  secret: string;
  services: ServiceProcess[];
}

async function openK6Stack(settings: K6Settings): Promise<K6Stack> {
  const tag = `${process.pid}_${randomBytes(2).toString("hex")}`;
  const acquirerId = "acq-k6";
  const secret = randomBytes(24).toString("hex");
  const world = await openRunWorld({
    databaseUrl: databaseUrlNamed(settings.databaseUrl, `quanta_k6_${tag}`),
    partitions: settings.partitions,
    campaigns: [readCampaignFile(SEED_CAMPAIGN_PATH)],
    redisUrl: settings.redisUrl,
    prefix: `quanta-k6-${tag}`,
    acquirerId,
    secret,
    logLevel: "error",
    poolMax: 2,
    applicationName: "quanta-k6",
  });
  return { world, acquirerId, secret, services: [] };
}

async function closeK6Stack(stack: K6Stack): Promise<void> {
  await Promise.all(stack.services.map((s) => stopService(s)));
  await closeRunWorld(stack.world);
}

/**
 * k6 with the dashboard's HTML report written to `html`, without its live server (port -1); a
 * period of 1 s so that a run of a few seconds has data (k6 skips the report of a run shorter than
 * one period). Resolves to k6's exit code (2 when it could not run or was killed by a signal).
 */
function spawnK6(binary: string, args: string[], html: string): Promise<number> {
  const k6Env = {
    ...process.env,
    K6_WEB_DASHBOARD: "true",
    K6_WEB_DASHBOARD_EXPORT: html,
    K6_WEB_DASHBOARD_PORT: "-1",
    K6_WEB_DASHBOARD_PERIOD: process.env.K6_WEB_DASHBOARD_PERIOD ?? "1s",
    K6_NO_USAGE_REPORT: "true",
  };
  return new Promise<number>((done) => {
    const child = spawn(binary, args, { env: k6Env, stdio: "inherit" });
    child.on("error", () => done(2));
    child.on("exit", (c, signal) => done(c ?? (signal ? 2 : 1)));
  });
}

/**
 * After the stack stopped: deadlocks and the invariants in the database, with k6's verdict, on one
 * line (.ci/run reads it); the exit code: k6's verdict's when it failed, else 1 when the database
 * shows a broken invariant or a deadlock.
 */
async function verdictInDatabase(
  stack: K6Stack,
  judged: { exitCode: number; text: string },
  name: string,
  html: string,
  out: (line: string) => void,
): Promise<number> {
  const deadlocks = await deadlocksOnceQuiet(stack.world.db.kysely, ["quanta-k6"]);
  const broken = (await verifyDatabaseInvariants(stack.world.db.kysely, "qianan-2020-b2")).filter((c) => !c.ok);
  const verdict = [
    judged.text,
    broken.length === 0
      ? "invariants hold in the database"
      : `INVARIANTS BROKEN: ${broken.map((c) => `${c.id}: ${c.detail}`).join("; ")}`,
    `${deadlocks} deadlocks`,
    `report ${html}${existsSync(html) ? "" : " (not written)"}`,
  ];
  out(`quanta k6 ${name}: ${verdict.join("; ")}`);
  if (judged.exitCode !== 0) return judged.exitCode;
  return broken.length === 0 && deadlocks === 0 ? 0 : 1;
}

/** What a script's summary decided (loadtest/k6/lib/summary.js writes it beside the summary). */
export interface K6Verdict {
  script: string;
  budgets: "gate" | "report";
  budgetOverIsResult: boolean;
  promisesBroken: string[];
  /** text: the figure against its budget, as the summary printed it ("answer p99 157.9 ms (budget < 100.0 ms)"). */
  budgetsOver: { metric: string; what: string; limit: number; value: number; text: string }[];
}

function readVerdict(path: string): K6Verdict | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, "utf8")) as K6Verdict;
}

/**
 * The run's exit code and its words, from k6's exit code and the summary's verdict. k6 exits 99 on
 * any failed threshold and cannot say which kind; the verdict can. A breakpoint's budget over is
 * its result; a budget reported only (BUDGETS=report) never fails the run; a promise always does.
 */
export function judge(k6Code: number, verdict: K6Verdict | undefined): { exitCode: number; text: string } {
  const over = (v: K6Verdict) => v.budgetsOver.map((b) => b.text).join("; ");
  if (verdict === undefined || (k6Code !== 0 && k6Code !== 99)) {
    return {
      exitCode: k6Code === 0 ? 1 : k6Code,
      text: `k6 exit ${k6Code}${verdict === undefined ? " (no verdict written: the script did not finish its summary)" : " (k6 itself failed)"}`,
    };
  }
  if (verdict.promisesBroken.length > 0)
    return { exitCode: 99, text: `k6 exit ${k6Code}: PROMISES BROKEN: ${verdict.promisesBroken.join(", ")}` };
  if (verdict.budgetsOver.length === 0)
    return { exitCode: 0, text: `k6 exit ${k6Code} (every promise kept, every budget within)` };
  if (verdict.budgetOverIsResult)
    return { exitCode: 0, text: `k6 exit ${k6Code} (every promise kept; breakpoint found: ${over(verdict)})` };
  if (verdict.budgets === "report")
    return {
      exitCode: 0,
      text: `k6 exit ${k6Code} (every promise kept; budgets reported only, over: ${over(verdict)})`,
    };
  return { exitCode: 99, text: `k6 exit ${k6Code}: BUDGETS OVER: ${over(verdict)}` };
}
