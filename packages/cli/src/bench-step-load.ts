import { CallbackClient, runRush, type RushRun, type Scenario } from "@quanta/loadtest";
import { warmUpScenario } from "./bench-warm-up.js";
import { StepMeter } from "./bench-step-meter.js";
import type { StepWorld } from "./bench-step-world.js";

/**
 * A step's arrivals: two warm-ups, not measured, then the measured seconds, all through the same
 * connections. First the warm-up campaign (bench-warm-up.ts: the same stock path, none of the
 * measured campaign's vouchers) at up to WARMUP_RATE_MAX_PER_S, enough requests for V8 to tier the
 * stock path up (a step that starts cold spends its first second 100-800 ms behind, floor and
 * quanta alike). Then payments below every threshold (no stock) at the step's own rate: the HTTP
 * side, the connection pool and the load generator are in their steady state when the measured
 * seconds start, and what those seconds begin with is what the opening minute begins with, the
 * demand for stock.
 */
const WARMUP_S = 3;
const WARMUP_RATE_MAX_PER_S = 1_500;
const WARMUP_AT_RATE_S = 2;
/** Connections of the load generator's pool (undici opens them as concurrency needs them). */
const CONNECTIONS_MAX = 512;

type Send = (s: Scenario, seed: number, runId: string) => Promise<RushRun>;

/** The rush scenario's payments at a fixed rate for stepS seconds. */
export function stepScenario(base: Scenario, stepS: number, rate: number): Scenario {
  return {
    ...base,
    durationS: stepS,
    arrival: { peakRatePerS: rate, rampS: 0, plateauS: stepS, endFraction: 1 },
    forgedShare: 0,
    // The scenario's resends and other bodies stay in: every step checks their answers (I4).
  };
}

/** The warm-ups, then the measured run with the meter started just before it (its sampler still running). */
export async function driveStep(
  world: StepWorld,
  scenario: Scenario,
  rep: number,
  rate: number,
): Promise<{ run: RushRun; meter: StepMeter }> {
  const { acquirerId, secret } = world;
  const baseUrl = `http://127.0.0.1:${world.services[0]!.port}`;
  const client = new CallbackClient(baseUrl, acquirerId, secret, CONNECTIONS_MAX);
  const send: Send = (s, seed, runId) =>
    runRush({
      baseUrl,
      acquirerId,
      secret,
      scenario: s,
      seed,
      runId,
      connections: CONNECTIONS_MAX,
      maxInFlight: 10_000,
      client,
    });
  let meter: StepMeter | undefined;
  try {
    await warmUp(send, world, scenario, rep, rate);
    meter = await StepMeter.start(world.probes, world.dbName, world.services);
    const run = await send(scenario, rep * 1_000 + rate, `b${rep}x${rate}`);
    return { run, meter };
  } catch (error) {
    meter?.stopSampling();
    throw error;
  } finally {
    await client.close();
  }
}

async function warmUp(send: Send, world: StepWorld, scenario: Scenario, rep: number, rate: number): Promise<void> {
  const steady = (ratePerS: number, durationS: number) => ({
    durationS,
    arrival: { ...scenario.arrival, peakRatePerS: ratePerS, plateauS: durationS },
  });
  await send(
    { ...warmUpScenario(scenario), ...steady(Math.min(rate, WARMUP_RATE_MAX_PER_S), WARMUP_S) },
    1,
    `w${rep}x${rate}`,
  );
  const floorFen = Math.min(...world.campaign.activities.flatMap((a) => a.tiers.map((t) => t.thresholdFen)));
  if (rate > WARMUP_RATE_MAX_PER_S && floorFen > 1) {
    await send(
      {
        ...scenario,
        ...steady(rate, WARMUP_AT_RATE_S),
        spendMixFen: [{ fromFen: 1, toFen: floorFen - 1, weight: 1 }],
        resendShare: 0,
      },
      2,
      `v${rep}x${rate}`,
    );
  }
}
