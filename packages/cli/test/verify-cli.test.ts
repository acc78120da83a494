import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { createTestWorld, type TestWorld } from "@quanta/test-kit";

/**
 * `quanta verify`, the operators' audit, as they run it: a readable table on stdout and an exit
 * code (0 when everything holds, 1 when anything is broken, 2 when the command or a file is
 * wrong), including I3 and I4 against files of what acquirers were answered.
 */
const CLI = fileURLToPath(new URL("../../../packages/cli/dist/main.js", import.meta.url));
let world: TestWorld;
let dir: string;

beforeAll(async () => {
  world = await createTestWorld("verify_cli");
  dir = mkdtempSync(join(tmpdir(), "quanta-verify-"));
  await sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, partition, status, reason, decided_by)
            values ('acq-a', 'decided-1', 'h', 'p1', 'M-0001', 5000, now(), now(), 0, 'rejected', 'below_threshold', 'ingress')`.execute(
    world.db.kysely,
  );
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await world?.cleanup();
});

const verify = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, "verify", "--campaign", "qianan-2020-b2", ...args], {
    env: { ...process.env, DATABASE_URL: world.databaseUrl },
    encoding: "utf8",
  });

describe("quanta verify", () => {
  it("prints every check and exits 0 when the campaign holds, saying which checks need what acquirers were answered", () => {
    const r = verify();
    expect(r.status, r.stderr).toBe(0);
    for (const id of ["I1", "I2", "I6", "budget", "refunds"])
      expect(r.stdout).toMatch(new RegExp(`^${id}\\s+yes`, "m"));
    expect(r.stdout).toMatch(/^I2\s+yes\s+policy kept: 0 grants/m);
    expect(r.stdout).not.toMatch(/^I[34]\s/m);
    expect(r.stdout).toMatch(/^not checked: I3, I4 \(.*--answers FILE\)$/m);
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
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/acquirerId\/txnId/);
    expect(bad.stderr).toMatch(/line 1 is "no-slash-here"/);
  });

  it("refuses an acknowledged list with nothing in it instead of passing it", () => {
    const file = join(dir, "empty.txt");
    writeFileSync(file, "# exported 0 rows\n\n");
    const r = verify("--acknowledged", file);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`${file} lists no acknowledged txns: nothing to check I3 against`);
  });

  it("checks I3 and I4 against a file of answers, and refuses one that is empty, unreadable or malformed", () => {
    const file = join(dir, "answers.jsonl");
    const answered = { txnId: "decided-1", status: "rejected", reason: "below_threshold" };
    writeFileSync(
      file,
      [
        { acquirerId: "acq-a", txnId: "decided-1", status: 202, answer: { txnId: "decided-1", status: "pending" } },
        { acquirerId: "acq-a", txnId: "decided-1", status: 200, answer: answered, ackMs: 12 },
        { acquirerId: "acq-a", txnId: "overloaded-1", status: 503, answer: { error: { code: "overloaded" } } },
      ]
        .map((line) => JSON.stringify(line))
        .join("\n"),
    );
    const r = verify("--answers", file);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^I3\s+yes\s+1 acknowledged txns, each with exactly one stored decision/m);
    expect(r.stdout).toMatch(
      /^I4\s+yes\s+1 answers 200 for 1 txns, each equal to the stored decision \(1 answered 202/m,
    );
    expect(r.stdout).not.toMatch(/not checked/);

    writeFileSync(
      file,
      `${JSON.stringify({ acquirerId: "acq-a", txnId: "x", status: 503, answer: { error: { code: "overloaded" } } })}\n`,
    );
    const none = verify("--answers", file);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain(`${file} holds no 200 or 202 answers (1 lines): nothing to check I3 and I4 against`);
    writeFileSync(file, "");
    expect(verify("--answers", file).stderr).toContain(`${file} holds no 200 or 202 answers (0 lines)`);

    writeFileSync(file, `acq-a/decided-1\n${JSON.stringify({ acquirerId: "acq-a", txnId: "y", status: 200 })}\n`);
    const malformed = verify("--answers", file);
    expect(malformed.status).toBe(2);
    expect(malformed.stderr).toContain(
      `${file}: expected {"acquirerId": string, "txnId": string, "status": HTTP status, "answer": body} on every line; line 1: not JSON; line 2: no answer`,
    );

    const missing = verify("--answers", join(dir, "no-such-file.jsonl"));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("no-such-file.jsonl: ENOENT");
  });

  it("fails I4 on a decision changed behind the application's back, and I3 and I4 on a txn stored twice", async () => {
    const db = world.db.kysely;
    const file = join(dir, "answers-broken.jsonl");
    writeFileSync(
      file,
      `${JSON.stringify({ acquirerId: "acq-a", txnId: "decided-1", status: 200, answer: { txnId: "decided-1", status: "rejected", reason: "below_threshold" } })}\n`,
    );
    expect(verify("--answers", file).status).toBe(0);

    await sql`update attempts set reason = 'merchant_not_eligible' where txn_id = 'decided-1'`.execute(db);
    const changed = verify("--answers", file);
    expect(changed.status).toBe(1);
    expect(changed.stdout).toMatch(/^I3\s+yes/m);
    expect(changed.stdout).toContain(
      '1 of 1 answers 200 (1 txns) differ from the stored decision, e.g. acq-a/decided-1: answered {"reason":"below_threshold","status":"rejected","txnId":"decided-1"}, ' +
        'stored {"reason":"merchant_not_eligible","status":"rejected","txnId":"decided-1"}',
    );
    expect(changed.stdout).toMatch(/^I4\s+NO\s/m);
    await sql`update attempts set reason = 'below_threshold' where txn_id = 'decided-1'`.execute(db);

    await sql`alter table attempts drop constraint attempts_pk cascade`.execute(db);
    await sql`insert into attempts (acquirer_id, txn_id, body_hash, payer_id, merchant_id, amount_fen, paid_at, received_at, partition, status, reason, decided_by)
              values ('acq-a', 'decided-1', 'h', 'p1', 'M-0001', 5000, now(), now(), 0, 'rejected', 'below_threshold', 'worker')`.execute(
      db,
    );
    const twice = verify("--answers", file);
    expect(twice.status).toBe(1);
    expect(twice.stdout).toMatch(
      /^I3\s+NO\s+1 of 1 acknowledged txns were decided more than once, e\.g\. acq-a\/decided-1 \(2 decisions\)/m,
    );
    expect(twice.stdout).toMatch(
      /^I4\s+NO\s+1 of 1 answers 200 \(1 txns\) differ from the stored decision, e\.g\. acq-a\/decided-1: answered .*, 2 stored decisions/m,
    );
  });
});
