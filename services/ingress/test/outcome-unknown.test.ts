import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEnv } from "@quanta/config";
import { findAttempt } from "@quanta/db";
import { CuttableProxy, createTestWorld, until, type TestWorld } from "@quanta/test-kit";
import { CallbackClient } from "@quanta/loadtest";
import { createRedis, lookupTxn } from "@quanta/queue";
import { startIngress, type RunningIngress } from "@quanta/ingress";

/**
 * Issue #19 item 2: a 5xx must mean "nothing was accepted". The ingresses reach Postgres through
 * a TCP proxy that can swallow the server's replies and then cut every connection: the ingress's
 * own decision (a merchant on no list: no stock, stored by the ingress) commits, and its reply is
 * lost. The write is retried until its outcome is known (QUANTA_OUTCOME_SETTLE_MS): the callback
 * is answered what was stored; when the outcome is still unknown after the settle window, the
 * connection is closed unanswered (never 503), and the resend gets the stored decision. A
 * statement that never left (Postgres unreachable from the start) is still 503, and nothing is
 * stored.
 */
let world: TestWorld;
let proxy: CuttableProxy;
/** Settles for long enough to outlast the outage of the first case. */
let patient: RunningIngress;
/** Settles for less than the outage of the second case. */
let hasty: RunningIngress;
let patientClient: CallbackClient;
let hastyClient: CallbackClient;

const payment = (txnId: string, amountFen = 250_000) =>
  JSON.stringify({
    txnId,
    payerId: `payer-${txnId}`,
    merchantId: "M-NOT-LISTED",
    amountFen,
    paidAt: "2020-09-13T10:00:01+08:00",
  });

type Outcome = { status: number; body?: unknown; error?: string };
const send = (client: CallbackClient, body: string): Promise<Outcome> =>
  client.postPayment(body).then(
    (a) => ({ status: a.status, body: a.body }),
    (error: Error) => ({ status: 0, error: String(error.cause ?? error.message) }),
  );

const untilStored = (txnId: string) =>
  until(`${txnId} stored`, 15_000, () => findAttempt(world.db.kysely, world.acquirerId, txnId));

beforeAll(async () => {
  world = await createTestWorld("outcome_unknown", { partitions: 1 });
  const target = new URL(world.databaseUrl);
  proxy = new CuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
  await proxy.up();
  const viaProxy = new URL(world.databaseUrl);
  viaProxy.port = String(proxy.port);
  const env = {
    ...world.env,
    DATABASE_URL: viaProxy.toString(),
    QUANTA_GROUP_COMMIT_MS: "0",
    QUANTA_INTAKE_FLUSH_MS: "0",
    PORT: "0",
  };
  patient = await startIngress(parseEnv({ ...env, QUANTA_OUTCOME_SETTLE_MS: "20000" }));
  hasty = await startIngress(parseEnv({ ...env, QUANTA_OUTCOME_SETTLE_MS: "1000" }));
  patientClient = new CallbackClient(`http://127.0.0.1:${patient.port}`, world.acquirerId, world.secret, 2);
  hastyClient = new CallbackClient(`http://127.0.0.1:${hasty.port}`, world.acquirerId, world.secret, 2);
}, 60_000);

afterAll(async () => {
  await patientClient?.close();
  await hastyClient?.close();
  await proxy?.up();
  await patient?.close();
  await hasty?.close();
  await proxy?.down();
  await world?.cleanup();
});

describe("a write whose reply was lost", () => {
  it("is settled before the callback is answered: the answer is the stored decision, not 503", async () => {
    expect((await send(patientClient, payment("warm-1"))).status).toBe(200);
    proxy.swallowReplies();
    const answer = send(patientClient, payment("lost-ack-1"));
    await untilStored("lost-ack-1"); // committed; its reply is being swallowed
    await proxy.down();
    // Longer than the ingress's retries of a failed statement (about 150 ms before this fix),
    // shorter than its settle window.
    await new Promise((r) => setTimeout(r, 3_000));
    await proxy.up();
    const got = await answer;
    const stored = await findAttempt(world.db.kysely, world.acquirerId, "lost-ack-1");
    expect(stored).toBeDefined();
    expect(got).toEqual({
      status: 200,
      body: { txnId: "lost-ack-1", status: "rejected", reason: "merchant_not_eligible" },
    });
    expect(await patientClient.getAttempt("lost-ack-1")).toMatchObject({ status: 200, body: got.body });
  });

  it("still unknown after the settle window: the connection is closed unanswered, never 503, and the resend gets the stored decision", async () => {
    // The first case cut this ingress's connections too: give its pool a live one again, since a
    // connection opened while replies are swallowed never finishes its handshake.
    expect((await send(hastyClient, payment("warm-2"))).status).toBe(200);
    proxy.swallowReplies();
    const answer = send(hastyClient, payment("lost-ack-2"));
    await untilStored("lost-ack-2");
    await proxy.down();
    const got = await answer; // the 1 s window passes with Postgres unreachable
    await proxy.up();
    expect(got.status).toBe(0);
    const resend = await send(hastyClient, payment("lost-ack-2"));
    expect(resend).toEqual({
      status: 200,
      body: { txnId: "lost-ack-2", status: "rejected", reason: "merchant_not_eligible" },
    });
    // Another body for the txn: 409, as for any decided txn.
    expect((await send(hastyClient, payment("lost-ack-2", 300_000))).status).toBe(409);
    const metrics = await (await fetch(`http://127.0.0.1:${hasty.port}/metrics`)).text();
    expect(metrics).toMatch(/quanta_callbacks_unanswered_total\{route="payment"\} [1-9]/);
  });

  it("a statement that never left (Postgres unreachable before it) is 503, and nothing is stored", async () => {
    await proxy.down();
    // The pool hears of its cut connections on this event loop; give it a turn or two.
    await new Promise((r) => setTimeout(r, 200));
    const got = await send(hastyClient, payment("never-sent-1"));
    await proxy.up();
    expect(got.status).toBe(503);
    expect(got.body).toMatchObject({ error: { code: "overloaded" } });
    expect(await findAttempt(world.db.kysely, world.acquirerId, "never-sent-1")).toBeUndefined();
    expect((await hastyClient.getAttempt("never-sent-1")).status).toBe(404);
  });

  it("a statement lost on its way (it never ran): unanswered, GET says unknown_txn and not pending, and the resend is decided", async () => {
    await until(
      "a live connection again",
      15_000,
      async () => (await send(hastyClient, payment("warm-3"))).status === 200,
    );
    proxy.dropRequests();
    const answer = send(hastyClient, payment("lost-req-1"));
    // Either ingress's own reads go through the proxy too: wait for this payment's statement.
    await until("the statement dropped on its way", 15_000, () => proxy.droppedRequestHolds("lost-req-1"));
    await proxy.down();
    const got = await answer; // the 1 s window passes with Postgres unreachable
    await proxy.up();
    expect(got.status).toBe(0);
    expect(await findAttempt(world.db.kysely, world.acquirerId, "lost-req-1")).toBeUndefined();
    // Still registered (its outcome was unknown), but nothing queued it: a 202 would promise a
    // decision that may never come. The acquirer sends the payment again instead.
    const redis = createRedis(world.redisUrl, "outcome-unknown-test");
    try {
      expect(await lookupTxn(redis, world.prefix, world.acquirerId, "lost-req-1")).toMatchObject({
        storedByIngress: true,
      });
    } finally {
      redis.disconnect();
    }
    expect(await hastyClient.getAttempt("lost-req-1")).toMatchObject({
      status: 404,
      body: { error: { code: "unknown_txn" } },
    });
    const resend = await send(hastyClient, payment("lost-req-1"));
    expect(resend).toEqual({
      status: 200,
      body: { txnId: "lost-req-1", status: "rejected", reason: "merchant_not_eligible" },
    });
    expect(await hastyClient.getAttempt("lost-req-1")).toMatchObject({ status: 200, body: resend.body });
  });
});
