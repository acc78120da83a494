import { deadlocksOnceQuiet } from "@quanta/db";
import type { Scenario } from "@quanta/loadtest";
import { stopService } from "./stack.js";
import { closeRushWorld, openRushWorld, type RushWorld } from "./rush-world.js";
import { driveRush } from "./rush-drive.js";
import { afterRush } from "./rush-after.js";
import { gatherFacts } from "./rush-facts.js";
import { rushReport, type RushReport } from "./rush-report.js";
import type { RushSettings } from "./rush-settings.js";

export type { RushSettings } from "./rush-settings.js";
export { writeRushResult, type RushReport } from "./rush-report.js";

/**
 * `quanta rush`: the opening minute of 2020-09-13 on this machine.
 * A private database (quanta_rush, recreated) and a private Redis prefix, the
 * seed campaign, one ingress and N worker processes, the scenario replayed
 * open-model, then the report and every invariant checked. Exit code 1 when
 * an invariant fails. Everything started here is stopped here.
 * The steps, each its own file: open the world (rush-world.ts), drive the rush
 * (rush-drive.ts), the checks through GET and the refund phase (rush-after.ts),
 * gather the facts (rush-facts.ts), render the report (rush-report.ts), close.
 */
export async function rush(settings: RushSettings): Promise<RushReport> {
  return rushWith(settings, (s) => s);
}

/** As rush(), with the scenario adjusted in code (tests shape the load without a file). */
export async function rushWith(settings: RushSettings, shape: (s: Scenario) => Scenario): Promise<RushReport> {
  const world = await openRushWorld(settings, shape);
  try {
    const drive = await driveRush(world);
    const after = await afterRush(world, drive);
    const deadlocks = await deadlocksOnceStopped(world);
    return rushReport(await gatherFacts(world, drive, after, deadlocks));
  } finally {
    await closeRushWorld(world, settings.keepDatabase);
  }
}

/** A Postgres backend publishes its counters when it exits: stop the services, then count deadlocks. */
async function deadlocksOnceStopped(world: RushWorld): Promise<number> {
  await Promise.all(world.services.map((s) => stopService(s)));
  return deadlocksOnceQuiet(world.db.kysely, ["quanta-rush"]);
}
