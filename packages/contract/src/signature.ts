import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * x-quanta-signature: t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<payload>")>
 * where payload is the raw body bytes (POST) or "GET /v1/attempts/<txnId>".
 */
export const SIGNATURE_HEADER = "x-quanta-signature";
export const ACQUIRER_HEADER = "x-quanta-acquirer";
export const REPLAY_WINDOW_S = 300;
const HEX_SHA256_LENGTH = 64;

export function sign(secret: string, unixSeconds: number, payload: string | Buffer): string {
  return `t=${unixSeconds},v1=${hmacHex(secret, unixSeconds, payload)}`;
}

function hmacHex(secret: string, unixSeconds: number, payload: string | Buffer): string {
  return createHmac("sha256", secret).update(`${unixSeconds}.`).update(payload).digest("hex");
}

export type SignatureCheck = { ok: true } | { ok: false; code: "bad_signature" | "stale_timestamp" };

/**
 * Checks the HMAC first (constant-time), then the replay window, so a
 * stale_timestamp answer is only ever given to a caller holding the secret.
 */
export function verifySignature(
  header: string | undefined,
  secret: string,
  payload: string | Buffer,
  nowMs: number,
): SignatureCheck {
  const parsed = parseSignatureHeader(header);
  if (!parsed) return { ok: false, code: "bad_signature" };
  const expected = Buffer.from(hmacHex(secret, parsed.t, payload), "hex");
  const given = Buffer.from(parsed.v1, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, code: "bad_signature" };
  }
  if (Math.abs(nowMs / 1000 - parsed.t) > REPLAY_WINDOW_S) return { ok: false, code: "stale_timestamp" };
  return { ok: true };
}

function parseSignatureHeader(header: string | undefined): { t: number; v1: string } | undefined {
  if (header === undefined || header.length > 200) return undefined;
  let t: number | undefined;
  let v1: string | undefined;
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t" && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === "v1" && value.length === HEX_SHA256_LENGTH && /^[0-9a-f]+$/.test(value)) v1 = value;
  }
  return t === undefined || v1 === undefined ? undefined : { t, v1 };
}

/** `QUANTA_ACQUIRER_SECRETS`: `id=secret[,id=secret…]`. */
export function parseAcquirerSecrets(text: string): Map<string, string> {
  const secrets = new Map<string, string>();
  for (const entry of text.split(",")) {
    const trimmed = entry.trim();
    if (trimmed === "") continue;
    const eq = trimmed.indexOf("=");
    const id = eq > 0 ? trimmed.slice(0, eq) : "";
    const secret = eq > 0 ? trimmed.slice(eq + 1) : "";
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id))
      throw new Error(
        `QUANTA_ACQUIRER_SECRETS: bad acquirer id in entry ${JSON.stringify(id || trimmed.slice(0, 20))}`,
      );
    if (secret.length < 16)
      throw new Error(`QUANTA_ACQUIRER_SECRETS: secret of acquirer ${id} is shorter than 16 characters`);
    if (secrets.has(id)) throw new Error(`QUANTA_ACQUIRER_SECRETS: acquirer ${id} listed twice`);
    secrets.set(id, secret);
  }
  if (secrets.size === 0) throw new Error("QUANTA_ACQUIRER_SECRETS lists no acquirer");
  return secrets;
}
