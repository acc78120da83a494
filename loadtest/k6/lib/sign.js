import crypto from "k6/crypto";

// The contract's signature: x-quanta-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>
// where the payload is the raw body bytes of a POST, or "GET /v1/attempts/<txnId>" for a GET.
// The body must be sent exactly as signed: callers pass the same string to sign() and to http.post().

export const SIGNATURE_HEADER = "x-quanta-signature";
export const ACQUIRER_HEADER = "x-quanta-acquirer";

/** @param {string} secret @param {string} payload @param {number} [unixSeconds] */
export function signature(secret, payload, unixSeconds = Math.floor(Date.now() / 1000)) {
  return `t=${unixSeconds},v1=${crypto.hmac("sha256", secret, `${unixSeconds}.${payload}`, "hex")}`;
}

/**
 * Headers of a signed callback.
 * @param {string} acquirerId @param {string} secret @param {string} payload @param {number} [unixSeconds]
 * @returns {Record<string, string>}
 */
export function signedHeaders(acquirerId, secret, payload, unixSeconds) {
  return {
    "content-type": "application/json",
    [ACQUIRER_HEADER]: acquirerId,
    [SIGNATURE_HEADER]: signature(secret, payload, unixSeconds),
  };
}
