import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { parseCampaignFile } from "@quanta/domain";
import { SEED_CAMPAIGN_PATH, startService, stopService, type ServiceProcess } from "@quanta/cli";
import { createTestWorld, type TestWorld, freePort, sleep } from "@quanta/test-kit";
import { CallbackClient, loadScenario, runRush } from "@quanta/loadtest";

/**
 * The operators' view, proven against a real Prometheus (Debian's package; .ci/run installs it
 * when missing): promtool checks the shipped config, rules and rule tests and lints every
 * service's /metrics; then a Prometheus running the shipped prometheus.yml and rules (targets
 * swapped for this test's ports, 1 s scrapes) watches a small rush, and every Grafana panel query
 * and every recording rule must return data through its HTTP API, with stock and budget equal to
 * what Postgres holds.
 */
const INFRA = fileURLToPath(new URL("../../../infra/", import.meta.url));
const PROMETHEUS_DIR = join(INFRA, "prometheus");
const DASHBOARDS_DIR = join(INFRA, "grafana", "dashboards");
const PROMETHEUS = process.env.PROMETHEUS_BIN ?? "prometheus";
const PROMTOOL = process.env.PROMTOOL_BIN ?? "promtool";

let world: TestWorld;
const services: ServiceProcess[] = [];
let prometheus: ChildProcess | undefined;
let promUrl = "";
let dataDir = "";

function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, args, { cwd: PROMETHEUS_DIR, input, encoding: "utf8" });
  if (r.error)
    throw new Error(
      `${PROMTOOL} not runnable (${r.error.message}); install Debian's prometheus package (.ci/run does)`,
    );
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

interface QueryResult {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
  error?: string;
}

async function query(expr: string): Promise<QueryResult> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as QueryResult;
}

/** The seed campaign with every quota divided by 20: small enough that a 12 s rush sells tiers out. */
function miniSeed() {
  const seed = JSON.parse(readFileSync(SEED_CAMPAIGN_PATH, "utf8"));
  let total = 0;
  for (const a of seed.activities) {
    for (const t of a.tiers) {
      t.quota = Math.max(5, Math.round(t.quota / 20));
      total += t.quota * t.discountFen;
    }
  }
  return parseCampaignFile({ ...seed, budgetFen: total });
}

function dashboardQueries(): { panel: string; expr: string }[] {
  const out: { panel: string; expr: string }[] = [];
  for (const file of readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith(".json"))) {
    const dash = JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), "utf8")) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    for (const p of dash.panels) for (const t of p.targets) out.push({ panel: `${file}: ${p.title}`, expr: t.expr });
  }
  return out;
}

function recordingRules(): string[] {
  const text = readFileSync(join(PROMETHEUS_DIR, "rules", "quanta-recording.yml"), "utf8");
  return [...text.matchAll(/- record: (\S+)/g)].map((m) => m[1]!);
}

beforeAll(async () => {
  world = await createTestWorld("prometheus", { campaigns: [miniSeed()], env: { QUANTA_EXPORTER_PORT: "0" } });
}, 120_000);

afterAll(async () => {
  prometheus?.kill("SIGKILL");
  await Promise.all(services.map((s) => stopService(s, 3_000)));
  await world?.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("promtool", () => {
  it("accepts the shipped config and rules, and every alert's firing and quiet cases pass", () => {
    const config = promtool(["check", "config", "prometheus.yml"]);
    expect(config.output).toMatch(/SUCCESS/);
    expect(config.status, config.output).toBe(0);
    const rules = promtool(["check", "rules", "rules/quanta-recording.yml", "rules/quanta-alerts.yml"]);
    expect(rules.status, rules.output).toBe(0);
    const tests = promtool(["test", "rules", "rules/quanta-alerts.test.yml"]);
    expect(tests.status, tests.output).toBe(0);
    expect(tests.output).toMatch(/SUCCESS/);
  });

  it("every alert has a test and a runbook", () => {
    const alerts = [
      ...readFileSync(join(PROMETHEUS_DIR, "rules", "quanta-alerts.yml"), "utf8").matchAll(/- alert: (\S+)/g),
    ].map((m) => m[1]!);
    const tests = readFileSync(join(PROMETHEUS_DIR, "rules", "quanta-alerts.test.yml"), "utf8");
    expect(alerts.length).toBeGreaterThanOrEqual(9);
    for (const a of alerts) {
      expect(tests, a).toContain(`alertname: ${a}`);
      const runbook = readFileSync(
        new URL(`../../../docs/runbooks/${a.replace(/([a-z])([A-Z])/g, "$1-$2").toLowerCase()}.md`, import.meta.url),
        "utf8",
      );
      expect(runbook).toMatch(/## What to do/);
    }
  });
});

describe("Prometheus watching a small rush", () => {
  it(
    "answers every dashboard panel and recording rule with data, and its stock and budget match Postgres",
    { timeout: 300_000 },
    async () => {
      const env = world.env;
      const ingress = await startService("ingress", env);
      services.push(ingress);
      const workers = [await startService("worker", env), await startService("worker", env)];
      services.push(...workers);
      const exporter = await startService("exporter", env);
      services.push(exporter);

      // promtool check metrics: every service's exposition lints clean (names, units, help).
      for (const s of [ingress, workers[0]!, exporter]) {
        const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
        const lint = promtool(["check", "metrics"], text);
        expect(lint.status, `${s.kind}: ${lint.output}`).toBe(0);
      }

      // The shipped prometheus.yml, with this test's targets, absolute rule paths and 1 s intervals.
      dataDir = mkdtempSync(join(tmpdir(), "quanta-prom-"));
      const config = readFileSync(join(PROMETHEUS_DIR, "prometheus.yml"), "utf8")
        .replace(/scrape_interval: \S+/, "scrape_interval: 1s")
        .replace(/scrape_timeout: \S+/, "scrape_timeout: 1s")
        .replace(/evaluation_interval: \S+/, "evaluation_interval: 1s")
        .replace(/- rules\//g, `- ${PROMETHEUS_DIR}/rules/`)
        .replace('"ingress:8080"', `"127.0.0.1:${ingress.port}"`)
        .replace('"worker-1:9101", "worker-2:9101"', workers.map((w) => `"127.0.0.1:${w.port}"`).join(", "))
        .replace('"exporter:9102"', `"127.0.0.1:${exporter.port}"`);
      expect(config).not.toMatch(/ingress:8080|worker-1|exporter:9102/);
      writeFileSync(join(dataDir, "prometheus.yml"), config);
      const port = await freePort();
      promUrl = `http://127.0.0.1:${port}`;
      prometheus = spawn(
        PROMETHEUS,
        [
          `--config.file=${join(dataDir, "prometheus.yml")}`,
          `--storage.tsdb.path=${join(dataDir, "data")}`,
          `--web.listen-address=127.0.0.1:${port}`,
          "--log.level=warn",
        ],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
      prometheus.on("error", (error) => {
        throw new Error(
          `${PROMETHEUS} did not start (${error.message}); install Debian's prometheus package (.ci/run does)`,
        );
      });
      for (let i = 0; ; i++) {
        const ready = await fetch(`${promUrl}/-/ready`).then(
          (r) => r.ok,
          () => false,
        );
        if (ready) break;
        if (i > 100) throw new Error("Prometheus did not become ready within 20 s");
        await sleep(200);
      }

      const scenario = {
        ...loadScenario(),
        durationS: 12,
        payers: 4_000,
        arrival: { peakRatePerS: 150, rampS: 2, plateauS: 10, endFraction: 1 },
      };
      const run = await runRush({
        baseUrl: `http://127.0.0.1:${ingress.port}`,
        acquirerId: world.acquirerId,
        secret: world.secret,
        scenario,
        seed: 5,
        runId: "prom",
        connections: 32,
        maxInFlight: 5_000,
      });
      expect(run.records.filter((r) => r.status === 200).length).toBeGreaterThan(1_000);
      // Refunds of 20 grants, full and partial, so the refund panels have something to show.
      const grants = run.records
        .filter(
          (r) => r.status === 200 && (r.answer as { status?: string }).status === "granted" && r.kind === "payment",
        )
        .slice(0, 20);
      const client = new CallbackClient(`http://127.0.0.1:${ingress.port}`, world.acquirerId, world.secret, 4);
      try {
        for (const [i, g] of grants.entries()) {
          const paid = JSON.parse(g.body) as { txnId: string; amountFen: number };
          const r = await client.postRefund(
            JSON.stringify({
              refundId: `prom-r${i}`,
              txnId: paid.txnId,
              amountFen: i % 4 === 3 ? 1 : paid.amountFen,
              refundedAt: "2020-09-14T10:00:00+08:00",
            }),
          );
          expect(r.status).toBe(200);
        }
      } finally {
        await client.close();
      }
      await sleep(3_000); // a few more scrapes and rule evaluations after the last answer

      const targets = (await (await fetch(`${promUrl}/api/v1/targets`)).json()) as {
        data: { activeTargets: { labels: { job: string }; health: string }[] };
      };
      expect(targets.data.activeTargets.map((t) => `${t.labels.job} ${t.health}`).sort()).toEqual([
        "quanta-exporter up",
        "quanta-ingress up",
        "quanta-worker up",
        "quanta-worker up",
      ]);

      const empty: string[] = [];
      for (const { panel, expr } of dashboardQueries()) {
        const r = await query(expr);
        expect(r.status, `${panel}: ${r.error}`).toBe("success");
        if (r.data.result.length === 0) empty.push(`${panel}: ${expr}`);
      }
      for (const record of recordingRules()) {
        const r = await query(record);
        if (r.status !== "success" || r.data.result.length === 0) empty.push(`recording rule ${record}`);
      }
      expect(empty).toEqual([]);

      // Stock and budget as Prometheus last scraped them, against Postgres.
      await sleep(2_000);
      const db = world.db.kysely;
      const stock = await sql<{ id: string; remaining: number }>`
      select t.id, t.pool + (select coalesce(sum(remaining), 0) from tier_shares s where s.campaign_id = t.campaign_id and s.tier_id = t.id)::int as remaining
        from tiers t`.execute(db);
      const promStock = new Map(
        (await query("quanta_tier_remaining")).data.result.map((s) => [s.metric.tier!, Number(s.value[1])]),
      );
      for (const row of stock.rows) expect(promStock.get(row.id), row.id).toBe(Number(row.remaining));
      const spent = await sql<{ activity_id: string; fen: string }>`
      select activity_id, sum(discount_fen) as fen from attempts where status = 'granted' and voucher_returned_at is null group by activity_id`.execute(
        db,
      );
      const byActivity = async (name: string) =>
        new Map((await query(name)).data.result.map((s) => [s.metric.activity!, Number(s.value[1])]));
      const promSpent = await byActivity("quanta_activity_discount_held_fen");
      for (const row of spent.rows) expect(promSpent.get(row.activity_id), row.activity_id).toBe(Number(row.fen));
      // The former name, kept for one release, carries the same values.
      expect(await byActivity("quanta_activity_discount_granted_fen")).toEqual(promSpent);
      const returned = (await query("sum(quanta_tier_returned)")).data.result.map((r) => Number(r.value[1]));
      const returnedDb = await sql<{
        n: string;
      }>`select count(*) as n from attempts where voucher_returned_at is not null`.execute(db);
      expect(returned).toEqual([Number(returnedDb.rows[0]!.n)]);
      expect(returned[0]).toBeGreaterThan(0);
      const soldOut = (await query("quanta_tier_sold_out_timestamp_seconds")).data.result.length;
      expect(soldOut).toBeGreaterThan(0);

      // A clean rush fires nothing that pages.
      const alerts = await query('ALERTS{alertstate="firing",severity="page"}');
      expect(alerts.data.result.map((a) => a.metric.alertname)).toEqual([]);
      console.log(
        `prometheus test: ${dashboardQueries().length} panel queries and ${recordingRules().length} recording rules answered; ${soldOut} tiers sold out`,
      );
    },
  );
});
