import { readFileSync } from "node:fs";
import { z } from "zod";

/**
 * The rush model as data. The k6 scripts and this Node driver read the same
 * file, so the two cannot drift apart.
 */
const share = z.number().min(0).max(1);
export const scenarioSchema = z.object({
  name: z.string(),
  notes: z.array(z.string()).optional(),
  campaignId: z.string(),
  openingAt: z.string(),
  durationS: z
    .number()
    .positive()
    .max(24 * 3600),
  arrival: z.object({
    peakRatePerS: z.number().positive().max(100_000),
    rampS: z.number().min(0),
    plateauS: z.number().min(0),
    endFraction: share,
  }),
  payers: z.number().int().min(1).max(100_000_000),
  merchants: z.object({
    flagship: z.string(),
    flagshipShare: share,
    designatedPrefix: z.string(),
    designatedCount: z.number().int().min(1),
    ineligibleShare: share,
  }),
  spendMixFen: z
    .array(
      z.object({ fromFen: z.number().int().min(1), toFen: z.number().int().min(1), weight: z.number().positive() }),
    )
    .min(1),
  outsideWindowShare: share,
  resendShare: share,
  conflictShare: share,
  forgedShare: share,
});

export type Scenario = z.infer<typeof scenarioSchema>;

export const DEFAULT_SCENARIO_PATH = new URL("../../scenarios/rush-0913.json", import.meta.url);

export function loadScenario(path: string | URL = DEFAULT_SCENARIO_PATH): Scenario {
  const result = scenarioSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
  if (!result.success) {
    throw new Error(
      `scenario ${String(path)} is invalid: ${result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  return result.data;
}

/** Offered arrivals per second at t seconds into the run: ramp, plateau, linear decay. */
export function rateAt(s: Scenario, tS: number): number {
  const { peakRatePerS: peak, rampS, plateauS, endFraction } = s.arrival;
  if (tS < 0 || tS > s.durationS) return 0;
  if (tS < rampS) return peak * (tS / rampS);
  if (tS < rampS + plateauS) return peak;
  const decayS = Math.max(1e-9, s.durationS - rampS - plateauS);
  return peak * (1 - (1 - endFraction) * ((tS - rampS - plateauS) / decayS));
}

/** Expected arrivals in [0, t]: the integral of rateAt, computed in 1 ms steps once. */
export function cumulativeArrivals(s: Scenario): (tS: number) => number {
  const stepS = 0.001;
  const steps = Math.ceil(s.durationS / stepS);
  const table = new Float64Array(steps + 1);
  for (let i = 1; i <= steps; i++) table[i] = table[i - 1]! + rateAt(s, (i - 0.5) * stepS) * stepS;
  return (tS) => table[Math.max(0, Math.min(steps, Math.floor(tS / stepS)))]!;
}
