import { readFileSync, readdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DEFAULT_SCENARIO_PATH, PaymentGenerator, cumulativeArrivals, loadScenario } from "@quanta/loadtest";
// The k6 library's pure modules (no k6 imports) run in Node as they are.
import { expectedArrivals, parseScenario, rushStages } from "./lib/scenario.js";
import { PaymentGenerator as K6Generator } from "./lib/payments.js";

/**
 * These checks keep the k6 scripts and the Node driver (npm run rush / bench) on one model (the
 * scripts themselves run in real k6 in .ci/run and in services/ingress/test/k6-smoke.test.ts): the same scenario file, the same arrival curve, the same
 * draws of payers, merchants and amounts.
 */
const here = dirname(fileURLToPath(import.meta.url));
const scripts = readdirSync(here).filter((f) => f.endsWith(".js"));

describe("k6 scripts and the Node driver", () => {
  it("open the same scenario file the Node driver replays", () => {
    const driverFile = fileURLToPath(DEFAULT_SCENARIO_PATH);
    const users = scripts.filter((f) => readFileSync(resolve(here, f), "utf8").includes("parseScenario("));
    expect(users.sort()).toEqual(["breakpoint.js", "rush-0913.js", "soak.js", "spike.js"]);
    for (const f of users) {
      const text = readFileSync(resolve(here, f), "utf8");
      const path = /env\("SCENARIO", "([^"]+)"\)/.exec(text)?.[1];
      expect(path, f).toBeDefined();
      expect(resolve(here, path!), f).toBe(driverFile);
    }
  });

  it("offer the same arrival curve (k6 stages integrate to the driver's arrivals)", () => {
    const node = loadScenario();
    const k6 = parseScenario(readFileSync(DEFAULT_SCENARIO_PATH, "utf8"));
    const stages = rushStages(k6, 1);
    expect(stages.reduce((s, st) => s + Number(st.duration.replace("s", "")), 0)).toBe(node.durationS);
    // Integrate the piecewise-linear stages the way k6 does and compare with the driver's curve.
    let rate = 0;
    let total = 0;
    for (const st of stages) {
      const d = Number(st.duration.replace("s", ""));
      total += ((rate + st.target) / 2) * d;
      rate = st.target;
    }
    const driver = cumulativeArrivals(node)(node.durationS);
    expect(Math.abs(total - driver) / driver).toBeLessThan(0.01);
    expect(Math.abs(expectedArrivals(k6, 1) - driver) / driver).toBeLessThan(0.01);
  });

  it("draw the same payers, merchants and amounts from the same seed", () => {
    const node = loadScenario();
    const a = new PaymentGenerator(node, 7, "node");
    const b = new K6Generator(parseScenario(readFileSync(DEFAULT_SCENARIO_PATH, "utf8")), { seed: 7, txnPrefix: "k6" });
    const pick = (x: { kind: string; body: { payerId: string; merchantId: string; amountFen: number } }) =>
      `${x.kind} ${x.body.payerId} ${x.body.merchantId} ${x.body.amountFen}`;
    const fromNode = Array.from({ length: 500 }, () => pick(a.next(1)));
    const fromK6 = Array.from({ length: 500 }, () => pick(b.next()));
    expect(fromK6).toEqual(fromNode);
    expect(new Set(fromNode.map((s) => s.split(" ")[0]))).toEqual(new Set(["payment", "resend", "conflict", "forged"]));
  });

  it("refuse a scenario the driver would refuse", () => {
    const text = readFileSync(DEFAULT_SCENARIO_PATH, "utf8");
    const bad = JSON.stringify({ ...JSON.parse(text), arrival: { ...JSON.parse(text).arrival, endFraction: 2 } });
    expect(() => parseScenario(bad)).toThrow(/endFraction/);
  });
});
