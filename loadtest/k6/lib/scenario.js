// The rush model, read from the same JSON file the Node driver (loadtest/driver) replays, so k6
// and `npm run rush` / `npm run bench` cannot drift apart. Each script open()s the file in its own
// init context (open() resolves paths against the script that calls it) and hands the text here.

/**
 * @typedef {{ fromFen: number, toFen: number, weight: number }} SpendBucket
 * @typedef {{
 *   name: string,
 *   campaignId: string,
 *   openingAt: string,
 *   durationS: number,
 *   arrival: { peakRatePerS: number, rampS: number, plateauS: number, endFraction: number },
 *   payers: number,
 *   merchants: { flagship: string, flagshipShare: number, designatedPrefix: string, designatedCount: number, ineligibleShare: number },
 *   spendMixFen: SpendBucket[],
 *   outsideWindowShare: number,
 *   resendShare: number,
 *   conflictShare: number,
 *   forgedShare: number,
 * }} Scenario
 */

const SHARES = /** @type {const} */ (["outsideWindowShare", "resendShare", "conflictShare", "forgedShare"]);

/**
 * Parses and checks the scenario (the same bounds as the Node driver's zod schema, by hand:
 * k6 has no npm modules).
 * @param {string} text
 * @returns {Scenario}
 */
export function parseScenario(text) {
  /** @type {Scenario} */
  const s = JSON.parse(text);
  const fail = (/** @type {string} */ what) => {
    throw new Error(`scenario is invalid: ${what}`);
  };
  if (typeof s.campaignId !== "string") fail("campaignId");
  if (!(s.durationS > 0)) fail("durationS must be > 0");
  if (!(s.arrival && s.arrival.peakRatePerS > 0)) fail("arrival.peakRatePerS must be > 0");
  if (!(s.arrival.rampS >= 0 && s.arrival.plateauS >= 0)) fail("arrival.rampS and plateauS must be >= 0");
  if (!(s.arrival.endFraction >= 0 && s.arrival.endFraction <= 1)) fail("arrival.endFraction must be in [0, 1]");
  if (!(Number.isInteger(s.payers) && s.payers >= 1)) fail("payers must be a positive integer");
  if (!(Array.isArray(s.spendMixFen) && s.spendMixFen.length > 0)) fail("spendMixFen must not be empty");
  for (const k of SHARES) if (!(s[k] >= 0 && s[k] <= 1)) fail(`${k} must be in [0, 1]`);
  return s;
}

/**
 * The arrival curve as ramping-arrival-rate stages (k6 interpolates linearly between targets):
 * ramp 0 -> peak, plateau, linear decay to endFraction x peak. Rates are per second, scaled.
 * @param {Scenario} s
 * @param {number} scale
 * @returns {{ duration: string, target: number }[]}
 */
export function rushStages(s, scale) {
  const { peakRatePerS, rampS, plateauS, endFraction } = s.arrival;
  const peak = Math.max(1, Math.round(peakRatePerS * scale));
  const decayS = Math.max(0, s.durationS - rampS - plateauS);
  /** @type {{ duration: string, target: number }[]} */
  const stages = [];
  if (rampS > 0) stages.push({ duration: `${rampS}s`, target: peak });
  if (plateauS > 0) stages.push({ duration: `${plateauS}s`, target: peak });
  if (decayS > 0) stages.push({ duration: `${decayS}s`, target: Math.max(1, Math.round(peak * endFraction)) });
  return stages;
}

/**
 * Arrivals the curve offers in all (the integral), for the report and for sizing.
 * @param {Scenario} s
 * @param {number} scale
 */
export function expectedArrivals(s, scale) {
  const { peakRatePerS, rampS, plateauS, endFraction } = s.arrival;
  const decayS = Math.max(0, s.durationS - rampS - plateauS);
  return Math.round(scale * peakRatePerS * (rampS / 2 + plateauS + (decayS * (1 + endFraction)) / 2));
}
