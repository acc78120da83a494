import { describe, expect, it } from "vitest";
import { OutcomeUnknownError, provedNotCommitted, withSettlingRetry } from "./settling-retry.js";

const fast = { attemptsMax: 3, baseDelayMs: 1, delayMaxMs: 2 };
const sqlError = (code: string) => Object.assign(new Error(`sqlstate ${code}`), { code });
const lost = () => new Error("Connection terminated unexpectedly");
const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

describe("provedNotCommitted", () => {
  it("is true only for errors that prove the statement did not commit", () => {
    expect(provedNotCommitted(sqlError("40P01"))).toBe(true); // the server answered: rolled back
    expect(provedNotCommitted(sqlError("57014"))).toBe(true); // statement_timeout cancelled it
    expect(provedNotCommitted(refused())).toBe(true); // never sent
    expect(provedNotCommitted(new Error("timeout exceeded when trying to connect"))).toBe(true);
    expect(provedNotCommitted(lost())).toBe(false); // in flight when the connection ended
    expect(provedNotCommitted(sqlError("08006"))).toBe(false);
    expect(provedNotCommitted(sqlError("57P01"))).toBe(false); // terminated: may have committed first
    expect(provedNotCommitted(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }))).toBe(false);
  });
});

describe("withSettlingRetry", () => {
  it("throws the last error after attemptsMax when every failure proved nothing committed", async () => {
    let tries = 0;
    const run = withSettlingRetry(
      async () => {
        tries++;
        throw refused();
      },
      { ...fast, settleMs: 60_000 },
    );
    await expect(run).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(tries).toBe(3);
  });

  it("after a failure that may have committed, retries past attemptsMax until the write is answered", async () => {
    let tries = 0;
    const value = await withSettlingRetry(
      async () => {
        tries++;
        if (tries === 1) throw lost();
        if (tries < 7) throw refused(); // Postgres away for a while
        return "stored row";
      },
      { ...fast, settleMs: 60_000 },
    );
    expect(value).toBe("stored row");
    expect(tries).toBe(7);
  });

  it("says OutcomeUnknownError, not the last error, when the outcome is still unknown after settleMs", async () => {
    let settling = 0;
    const run = withSettlingRetry(
      async () => {
        throw lost();
      },
      { ...fast, settleMs: 30, onSettling: () => settling++ },
    );
    await expect(run).rejects.toBeInstanceOf(OutcomeUnknownError);
    expect(settling).toBe(1);
  });

  it("a non-transient error after a maybe-committed try is still an unknown outcome", async () => {
    let tries = 0;
    const run = withSettlingRetry(
      async () => {
        if (++tries === 1) throw lost();
        throw new Error("a bug");
      },
      { ...fast, settleMs: 60_000 },
    );
    await expect(run).rejects.toMatchObject({ code: "outcome_unknown" });
  });
});
