import { createHmac } from "node:crypto";

/**
 * Payer ids are personal data. The ingress replaces a payment's payerId by its pseudonym before
 * anything is stored, queued or logged: `<key id>_<HMAC-SHA256(key, payerId), base64url, 32 chars>`.
 * Keyed, so that the stored form cannot be reversed by hashing candidate ids without the key;
 * deterministic, so that one payer is one pseudonym (I2 compares pseudonyms); prefixed with the
 * key's id, so that rows written under a retired key say which key made them.
 * Trade-off: a new key gives every payer a new pseudonym, so a key lives as long as the
 * campaigns that compare payers under it (see the README's rotation note).
 */
export interface PayerKey {
  readonly id: string;
  readonly secret: string;
}

/** 32 base64url chars: 192 bits of the HMAC, far past any collision among a province's payers. */
const REF_CHARS = 32;
export const PAYER_KEY_SECRET_MIN_CHARS = 32;

/** `QUANTA_PAYER_KEY`: `id:secret`, id 1-8 chars of [A-Za-z0-9], secret at least 32 chars. */
export function parsePayerKey(text: string | undefined): PayerKey {
  if (!text)
    throw new Error("QUANTA_PAYER_KEY is required: id:secret (the key that pseudonymises payer ids; see the README)");
  const colon = text.indexOf(":");
  const id = colon < 0 ? "" : text.slice(0, colon).trim();
  const secret = colon < 0 ? "" : text.slice(colon + 1).trim();
  if (!/^[A-Za-z0-9]{1,8}$/.test(id))
    throw new Error("QUANTA_PAYER_KEY: expected id:secret with an id of 1-8 letters or digits");
  if (secret.length < PAYER_KEY_SECRET_MIN_CHARS)
    throw new Error(
      `QUANTA_PAYER_KEY: the secret of key ${id} is shorter than ${PAYER_KEY_SECRET_MIN_CHARS} characters`,
    );
  return { id, secret };
}

/** The stored form of a payer id (fits the contract's id rule: [A-Za-z0-9_-], at most 41 chars). */
export function payerRef(key: PayerKey, payerId: string): string {
  return `${key.id}_${createHmac("sha256", key.secret).update(payerId, "utf8").digest("base64url").slice(0, REF_CHARS)}`;
}
