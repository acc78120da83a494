import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect as tcpConnect } from "node:net";
import { sql } from "kysely";
import { parseEnv } from "@quanta/config";
import { ACQUIRER_HEADER, SIGNATURE_HEADER, sign } from "@quanta/contract";
import { createTestWorld, type TestWorld } from "@quanta/test-kit";
import { CallbackClient } from "@quanta/loadtest";
import { startIngress, type RunningIngress } from "@quanta/ingress";
import { keys } from "@quanta/queue";
import { Redis } from "ioredis";

/**
 * Hostile input (issue #6): every malformed, forged or oversized request gets the contract's
 * error, the process stays up, nothing is accepted (no Redis registration) or decided (no row),
 * and the rejection is counted in quanta_attempts_answered_total{outcome="error"}.
 * No worker runs here: anything that slipped through would sit registered in Redis.
 */
let world: TestWorld;
let ingress: RunningIngress;
let client: CallbackClient;
let redis: Redis;
const PATH = "/v1/callbacks/payment";

beforeAll(async () => {
  world = await createTestWorld("hostile");
  ingress = await startIngress(parseEnv(world.env));
  client = new CallbackClient(`http://127.0.0.1:${ingress.port}`, world.acquirerId, world.secret, 32);
  redis = new Redis(world.redisUrl);
});

afterAll(async () => {
  await client?.close();
  await ingress?.close();
  redis?.disconnect();
  await world?.cleanup();
});

const now = () => Math.floor(Date.now() / 1000);
const good = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    txnId: "h-1",
    payerId: "p-1",
    merchantId: "M-0001",
    amountFen: 250_000,
    paidAt: "2020-09-13T10:00:01+08:00",
    ...over,
  });
const signed = (body: string | Buffer, extra: Record<string, string> = {}) => ({
  "content-type": "application/json",
  [ACQUIRER_HEADER]: world.acquirerId,
  [SIGNATURE_HEADER]: sign(world.secret, now(), body),
  ...extra,
});

async function nothingAccepted(): Promise<void> {
  const rows = await sql<{ n: string }>`select count(*) as n from attempts`.execute(world.db.kysely);
  expect(Number(rows.rows[0]!.n)).toBe(0);
  expect(await redis.keys(keys.txnPattern(world.prefix))).toEqual([]);
}

async function errorCount(code: string): Promise<number> {
  const text = String((await client.raw("GET", "/metrics", {})).body);
  const m = new RegExp(`quanta_attempts_answered_total\\{outcome="error",reason="${code}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

/** Raw bytes on a socket (for framing the HTTP client would refuse to send); resolves with the status line or "closed". */
function rawHttp(request: string, body: Buffer | string, waitMs = 1_500): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect(ingress.port, "127.0.0.1");
    let data = "";
    const done = () => {
      socket.destroy();
      resolve(data.split("\r\n")[0] || "closed");
    };
    socket.on("data", (chunk) => {
      data += chunk.toString("latin1");
      if (data.includes("\r\n\r\n")) done();
    });
    socket.on("error", done);
    socket.on("close", done);
    socket.setTimeout(waitMs, done);
    socket.write(request);
    socket.write(body);
  });
}

describe("signatures and timestamps", () => {
  it("refuses forged, truncated, wrong-secret, missing, stale and future signatures with 401", async () => {
    const b = good();
    const before = await errorCount("bad_signature");
    const cases: [Record<string, string>, string][] = [
      [signed(b, { [SIGNATURE_HEADER]: sign("another-secret-0123456789", now(), b) }), "bad_signature"],
      [signed(b, { [SIGNATURE_HEADER]: sign(world.secret, now(), b).slice(0, -4) }), "bad_signature"],
      [signed(b, { [SIGNATURE_HEADER]: `t=${now()}` }), "bad_signature"],
      [signed(b, { [SIGNATURE_HEADER]: "" }), "bad_signature"],
      [signed(b, { [SIGNATURE_HEADER]: `v1=${"0".repeat(64)},t=${now()}` }), "bad_signature"],
      [signed(b, { [SIGNATURE_HEADER]: sign(world.secret, now(), `${b} `) }), "bad_signature"],
      [signed(b, { [SIGNATURE_HEADER]: sign(world.secret, now() - 3_600, b) }), "stale_timestamp"],
      [signed(b, { [SIGNATURE_HEADER]: sign(world.secret, now() + 3_600, b) }), "stale_timestamp"],
      [signed(b, { [ACQUIRER_HEADER]: "nobody" }), "unknown_acquirer"],
    ];
    for (const [headers, code] of cases) {
      expect(await client.raw("POST", PATH, headers, b), code).toMatchObject({
        status: 401,
        body: { error: { code } },
      });
    }
    const missing = { "content-type": "application/json", [ACQUIRER_HEADER]: world.acquirerId };
    expect(await client.raw("POST", PATH, missing, b)).toMatchObject({
      status: 401,
      body: { error: { code: "bad_signature" } },
    });
    const noAcquirer = { "content-type": "application/json", [SIGNATURE_HEADER]: sign(world.secret, now(), b) };
    expect(await client.raw("POST", PATH, noAcquirer, b)).toMatchObject({
      status: 401,
      body: { error: { code: "unknown_acquirer" } },
    });
    expect((await errorCount("bad_signature")) - before).toBe(7);
    await nothingAccepted();
  });
});

describe("bodies", () => {
  it("refuses oversized, empty, truncated and mistyped bodies with the contract's error", async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, "a");
    expect(await client.raw("POST", PATH, signed(big), big)).toMatchObject({
      status: 413,
      body: { error: { code: "body_too_large" } },
    });
    expect(await client.raw("POST", PATH, signed(""), "")).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_body" } },
    });
    const truncated = good().slice(0, 40);
    expect(await client.raw("POST", PATH, signed(truncated), truncated)).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_body" } },
    });
    const b = good();
    expect(await client.raw("POST", PATH, signed(b, { "content-type": "text/plain" }), b)).toMatchObject({
      status: 415,
    });
    expect(
      await client.raw("POST", PATH, signed(b, { "content-type": "application/x-www-form-urlencoded" }), b),
    ).toMatchObject({ status: 415 });
    for (const body of ["[]", "null", "42", '"x"']) {
      expect(await client.raw("POST", PATH, signed(body), body), body).toMatchObject({
        status: 400,
        body: { error: { code: "invalid_body" } },
      });
    }
    await nothingAccepted();
  });

  it("names the field of every bad value: strings, floats, negative, huge, over-long and non-ASCII ids, bad dates", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ amountFen: "250000" }, "amountFen"],
      [{ amountFen: 2500.5 }, "amountFen"],
      [{ amountFen: -1 }, "amountFen"],
      [{ amountFen: 0 }, "amountFen"],
      [{ amountFen: 1e20 }, "amountFen"],
      [{ amountFen: Number.MAX_SAFE_INTEGER + 2 }, "amountFen"],
      [{ txnId: "t".repeat(65) }, "txnId"],
      [{ txnId: "交易-1" }, "txnId"],
      [{ txnId: "a b" }, "txnId"],
      [{ payerId: "" }, "payerId"],
      [{ payerId: 12345 }, "payerId"],
      [{ merchantId: "M-0001\u0000" }, "merchantId"],
      [{ paidAt: "2020-09-31T10:00:00+08:00" }, "paidAt"],
      [{ paidAt: "2020-09-13 10:00:00" }, "paidAt"],
      [{ paidAt: 1600000000 }, "paidAt"],
    ];
    for (const [over, field] of cases) {
      const b = good(over);
      expect(await client.raw("POST", PATH, signed(b), b), JSON.stringify(over)).toMatchObject({
        status: 400,
        body: { error: { code: "invalid_body", field } },
      });
    }
    await nothingAccepted();
  });

  it("treats __proto__ and constructor keys as plain data: no pollution, the fields are still required", async () => {
    // Written as text: a "__proto__" key in a JS object literal would set the prototype instead.
    const onlyProto = `{"__proto__":{"txnId":"h-2","payerId":"p","merchantId":"M-0001","amountFen":1,"paidAt":"2020-09-13T10:00:01+08:00"}}`;
    expect(await client.raw("POST", PATH, signed(onlyProto), onlyProto)).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_body" } },
    });
    const withProto = `{"__proto__":{"amountFen":"x"},"txnId":"h-4","payerId":"p","merchantId":"M-0001","amountFen":5000,"paidAt":"2020-09-13T10:00:01+08:00"}`;
    // Extra fields are ignored by the contract: this one is a valid (below-threshold) payment.
    const answer = await client.raw("POST", PATH, signed(withProto), withProto);
    expect(answer).toMatchObject({
      status: 200,
      body: { txnId: "h-4", status: "rejected", reason: "below_threshold" },
    });
    await sql`delete from attempts where txn_id = 'h-4'`.execute(world.db.kysely);
    await redis.del(keys.txn(world.prefix, world.acquirerId, "h-4"));
    const constructorKey = `{"constructor":{"prototype":{"polluted":true}},"txnId":"h-3","payerId":"p","merchantId":"M-0001","amountFen":"x","paidAt":"2020-09-13T10:00:01+08:00"}`;
    expect(await client.raw("POST", PATH, signed(constructorKey), constructorKey)).toMatchObject({ status: 400 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).txnId).toBeUndefined();
    await nothingAccepted();
  });

  it("survives content-length lies: shorter than the body, longer than the body", async () => {
    const b = good({ txnId: "h-cl" });
    const head = (length: number) =>
      `POST ${PATH} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${ACQUIRER_HEADER}: ${world.acquirerId}\r\n` +
      `${SIGNATURE_HEADER}: ${sign(world.secret, now(), b)}\r\ncontent-length: ${length}\r\nconnection: close\r\n\r\n`;
    expect(await rawHttp(head(20), b)).toMatch(/^HTTP\/1\.1 (400|401)/);
    expect(await rawHttp(head(b.length + 100), b)).toMatch(/^(HTTP\/1\.1 4\d\d|closed)/);
    expect(await rawHttp(head(-5), b)).toMatch(/^HTTP\/1\.1 400/);
    expect(await client.raw("GET", "/healthz", {})).toMatchObject({ status: 200 });
    await nothingAccepted();
  });
});

describe("a flood from one client", () => {
  it("answers 3,000 forged callbacks 401, stays up and ready, counts them, and accepts nothing", async () => {
    const before = await errorCount("bad_signature");
    const b = good({ txnId: "flood" });
    const headers = signed(b, { [SIGNATURE_HEADER]: sign("flood-secret-0123456789", now(), b) });
    const statuses = new Map<number, number>();
    for (let i = 0; i < 3_000; i += 300) {
      const answers = await Promise.all(Array.from({ length: 300 }, () => client.raw("POST", PATH, headers, b)));
      for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 401: 3_000 });
    expect((await errorCount("bad_signature")) - before).toBe(3_000);
    expect(await client.raw("GET", "/readyz", {})).toMatchObject({ status: 200 });
    await nothingAccepted();
    // And a genuine callback right after the flood is accepted (the ingress still works).
    const real = good({ txnId: "after-flood" });
    const answer = await client.postPayment(real);
    expect([200, 202]).toContain(answer.status);
  });
});
