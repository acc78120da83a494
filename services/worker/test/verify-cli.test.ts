import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { createTestWorld, type TestWorld } from "@quanta/cli";

/**
 * `quanta verify`, the operators' audit, as they run it: a readable table on stdout and an exit
 * code (0 when everything holds, 1 when anything is broken), including I3 against a file of what
 * acquirers were answered.
 */
const CLI = fileURLToPath(new URL("../../../packages/cli/dist/main.js", import.meta.url));
let world: TestWorld;
let dir: string;

beforeAll(async () => {
  world = await createTestWorld("verify_cli");
  dir = mkdtempSync(join(tmpdir(), "quanta-verify-"));
  await sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, partition, status, reason, decided_by)
            values ('acq-a', 'decided-1', 'h', 'p1', 'M-0001', 5000, now(), now(), 0, 'rejected', 'below_threshold', 'ingress')`.execute(world.db.kysely);
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await world?.cleanup();
});

const verify = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, "verify", "--campaign", "qianan-2020-b2", ...args], { env: { ...process.env, DATABASE_URL: world.databaseUrl }, encoding: "utf8" });

describe("quanta verify", () => {
  it("prints every check and exits 0 when the campaign holds", () => {
    const r = verify();
    expect(r.status, r.stderr).toBe(0);
    for (const id of ["I1", "I2", "I4", "I6", "budget"]) expect(r.stdout).toMatch(new RegExp(`^${id}\\s+yes`, "m"));
  });

  it("checks I3 against a file of acknowledged txns, naming what has no decision (exit 1)", () => {
    const file = join(dir, "acked.txt");
    writeFileSync(file, "# answered 200/202 by the ingress\nacq-a/decided-1\n\nacq-a/never-decided\n");
    const r = verify("--acknowledged", file);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^I3\s+NO\s+1 of 2 acknowledged txns have no decision, e\.g\. acq-a\/never-decided/m);
    writeFileSync(file, "acq-a/decided-1\n");
    expect(verify("--acknowledged", file).status).toBe(0);
    writeFileSync(file, "no-slash-here\n");
    const bad = verify("--acknowledged", file);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/acquirerId\/txnId/);
  });
});
