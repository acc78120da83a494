import exec from "k6/execution";
import { Rate } from "k6/metrics";
import { PaymentGenerator } from "./payments.js";
import { postPayment } from "./contract.js";
import { config, envNumber } from "./config.js";
import { sameAnswer } from "./canonical.js";

/** A resend of an acknowledged txn got the first answer (200: the same decision; 202: 200 or 202). */
export const resendSame = new Rate("quanta_resend_same_answer");
/** Another body for an acknowledged txn was answered 409 txn_conflict. */
export const conflict409 = new Rate("quanta_conflict_409");

/** First answers this VU keeps, to judge its resends and conflicting copies (the generator reuses its last 1,000 bodies). */
const FIRST_ANSWERS_MAX = 2000;

/**
 * The body of every load script's iteration: the next arrival of this VU's generator (created on
 * its first iteration, seeded SEED + VU id so runs replay), posted and checked; a resend is
 * compared with its txn's first answer, a conflicting copy must be 409.
 * @param {import("./scenario.js").Scenario} scenario
 * @param {import("./contract.js").Target} target
 * @param {{ seed: number, payers: number }} defaults SEED and PAYERS when not set in the environment
 */
export function paymentIteration(scenario, target, defaults) {
  /** @type {PaymentGenerator | undefined} */
  let generator;
  /** @type {Map<string, { status: number, answer: any }>} */
  const firsts = new Map();
  return () => {
    if (generator === undefined) {
      generator = new PaymentGenerator(scenario, {
        seed: envNumber("SEED", defaults.seed) + exec.vu.idInTest,
        txnPrefix: `${config.runId}-${exec.vu.idInTest}`,
        payers: envNumber("PAYERS", defaults.payers),
      });
    }
    const arrival = generator.next();
    const answer = postPayment(target, arrival.body, arrival.kind);
    const first = firsts.get(arrival.body.txnId);
    if (arrival.kind === "payment") {
      if (firsts.size >= FIRST_ANSWERS_MAX) firsts.delete(/** @type {string} */ (firsts.keys().next().value));
      firsts.set(arrival.body.txnId, answer);
    } else if (arrival.kind === "resend" && first !== undefined && (first.status === 200 || first.status === 202)) {
      const same =
        first.status === 200
          ? answer.status === 200 && sameAnswer(answer.answer, first.answer)
          : answer.status === 200 || answer.status === 202;
      resendSame.add(same);
      if (first.status === 202 && answer.status === 200) firsts.set(arrival.body.txnId, answer);
    } else if (arrival.kind === "conflict" && first !== undefined && (first.status === 200 || first.status === 202)) {
      conflict409.add(answer.status === 409);
    }
    return { arrival, answer };
  };
}
