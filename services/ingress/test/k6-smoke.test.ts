import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MIN_K6, atLeast, k6Version } from "@quanta/cli";
import { startInProcessStack, type InProcessStack } from "@quanta/test-kit";

/**
 * loadtest/k6/smoke.js in real k6 (when K6 names a k6 binary; .ci/run sets it) against an
 * in-process stack on this file's own database and Redis prefix: every check and threshold holds
 * (k6 exits 0) and its summary is written. Without K6 this is skipped: `npm test` needs no k6.
 */
const k6 = process.env.K6;
const usable = k6 !== undefined && existsSync(k6);
const SMOKE = fileURLToPath(new URL("../../../loadtest/k6/smoke.js", import.meta.url));

let stack: InProcessStack;
let out: string;

describe.skipIf(!usable)("smoke.js in real k6", () => {
  beforeAll(async () => {
    stack = await startInProcessStack("k6_smoke", { connections: 1 });
    out = mkdtempSync(join(tmpdir(), "quanta-k6-smoke-"));
  });

  afterAll(async () => {
    await stack?.close();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it("passes every check and threshold of the contract, and writes its summary", async () => {
    const seen = k6Version(k6!);
    expect(seen).toHaveProperty("version");
    expect(atLeast((seen as { version: number[] }).version, MIN_K6)).toBe(true);
    // Asynchronously: the stack k6 talks to runs in this process.
    const run = await new Promise<{ status: number | null; output: string }>((done) => {
      const child = spawn(
        k6!,
        [
          "run",
          "--quiet",
          "-e",
          `BASE_URL=http://127.0.0.1:${stack.ingress.port}`,
          "-e",
          `ACQUIRER_ID=${stack.world.acquirerId}`,
          "-e",
          `ACQUIRER_SECRET=${stack.world.secret}`,
          "-e",
          `SUMMARY_DIR=${out}`,
          "-e",
          "SMOKE_TAIL_S=0",
          SMOKE,
        ],
        { env: { ...process.env, K6_NO_USAGE_REPORT: "true" } },
      );
      let output = "";
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
      child.on("exit", (status) => done({ status, output }));
    });
    expect(run.status, run.output).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["smoke-summary.json", "smoke-summary.md", "smoke-verdict.json"]);
    const summary = readFileSync(join(out, "smoke-summary.md"), "utf8");
    expect(summary).toContain("Promises: all kept");
    expect(JSON.parse(readFileSync(join(out, "smoke-verdict.json"), "utf8"))).toMatchObject({
      script: "smoke",
      promisesBroken: [],
      budgetsOver: [],
    });
    const data = JSON.parse(readFileSync(join(out, "smoke-summary.json"), "utf8")) as {
      metrics: { checks: { values: { passes: number; fails: number } } };
    };
    expect(data.metrics.checks.values.fails).toBe(0);
    expect(data.metrics.checks.values.passes).toBeGreaterThanOrEqual(25);
  });
});
