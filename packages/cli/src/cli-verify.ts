import { checkAcknowledged, verifyDatabaseInvariants, type InvariantCheck } from "@quanta/db";
import { table } from "@quanta/loadtest";
import { checkAnswers, isAcknowledged, type ReceivedAnswer } from "./answers-check.js";
import { readAcknowledgedFile, readAnswersFile } from "./verify-files.js";
import { UsageError, entries, type CliValues, type CommandInput } from "./cli-args.js";
import { withCommandDatabase } from "./cli-database.js";

/**
 * `quanta verify --campaign ID [--answers FILE] [--acknowledged FILE]`: the invariants that the
 * database alone can show, then I3 and I4 against what acquirers were answered when a file says so.
 * Exit 0 when every check holds, 1 when one does not.
 */
export async function verifyCommand({ values, env }: CommandInput): Promise<number> {
  if (!values.campaign) throw new UsageError("verify needs --campaign ID");
  // The files are read before the database: a wrong file is the operator's to fix, not a broken invariant.
  const { listed, answers } = readEvidence(values);
  const campaign = values.campaign;
  return withCommandDatabase(env, "quanta-verify", async (db) => {
    const checks = await verifyDatabaseInvariants(db.kysely, campaign);
    if (listed !== undefined || answers !== undefined) {
      checks.push(await checkAcknowledged(db.kysely, [...(listed ?? []), ...(answers ?? []).filter(isAcknowledged)]));
    }
    if (answers !== undefined) checks.push(await checkAnswers(db.kysely, answers));
    printChecks(checks, listed, answers);
    return checks.every((c) => c.ok) ? 0 : 1;
  });
}

/** The acknowledged txns and the answers, each when its flag is given; a file with nothing to check is refused. */
function readEvidence(values: CliValues): {
  listed?: { acquirerId: string; txnId: string }[];
  answers?: ReceivedAnswer[];
} {
  const listed = values.acknowledged === undefined ? undefined : entries(readAcknowledgedFile(values.acknowledged));
  if (listed?.length === 0)
    throw new UsageError(`${values.acknowledged} lists no acknowledged txns: nothing to check I3 against`);
  const answers = values.answers === undefined ? undefined : entries(readAnswersFile(values.answers));
  if (answers !== undefined && !answers.some(isAcknowledged)) {
    throw new UsageError(
      `${values.answers} holds no 200 or 202 answers (${answers.length} lines): nothing to check I3 and I4 against`,
    );
  }
  return { listed, answers };
}

function printChecks(checks: readonly InvariantCheck[], listed: unknown[] | undefined, answers: unknown[] | undefined) {
  console.log(
    table(
      ["", "holds", "evidence"],
      checks.map((c) => [c.id, c.ok ? "yes" : "NO", c.detail]),
    ),
  );
  const unchecked = [
    ...(listed === undefined && answers === undefined ? ["I3"] : []),
    ...(answers === undefined ? ["I4"] : []),
  ];
  if (unchecked.length > 0)
    console.log(
      `not checked: ${unchecked.join(", ")} (they compare what acquirers were answered with the stored decisions: --answers FILE)`,
    );
}
