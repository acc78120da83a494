import exec from "k6/execution";
import { PaymentGenerator } from "./payments.js";
import { postPayment } from "./contract.js";
import { config, envNumber } from "./config.js";

/**
 * The body of every load script's iteration: the next arrival of this VU's generator (created on
 * its first iteration, seeded SEED + VU id so runs replay), posted and checked.
 * @param {import("./scenario.js").Scenario} scenario
 * @param {import("./contract.js").Target} target
 * @param {{ seed: number, payers: number }} defaults SEED and PAYERS when not set in the environment
 */
export function paymentIteration(scenario, target, defaults) {
  /** @type {PaymentGenerator | undefined} */
  let generator;
  return () => {
    generator ??= new PaymentGenerator(scenario, {
      seed: envNumber("SEED", defaults.seed) + exec.vu.idInTest,
      txnPrefix: `${config.runId}-${exec.vu.idInTest}`,
      payers: envNumber("PAYERS", defaults.payers),
    });
    const arrival = generator.next();
    return { arrival, answer: postPayment(target, arrival.body, arrival.kind) };
  };
}
