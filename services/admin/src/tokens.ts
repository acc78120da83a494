import { createHash, timingSafeEqual } from "node:crypto";
import { ADMIN_SCOPES, isAdminScope, type AdminScope } from "./scopes.js";

/**
 * Admin bearer tokens from QUANTA_ADMIN_TOKENS: `name:scope=token[,name:scope=token…]`, scope one
 * of read, operate, administer (scopes.ts). The name is who the audit log says acted. An entry
 * without a scope (`name=token`, the format before scopes) gets read only: an old deployment's
 * tokens keep seeing, and change nothing until someone says what they may change; the admin
 * names them at start. Tokens are compared in constant time (by their SHA-256, so lengths do not
 * leak either), must not equal any acquirer secret (the admin API has its own secret), and each
 * names one holder: a token given twice would leave its scope to the order of the list.
 */
const TOKEN_MIN_LENGTH = 32;
const FORMAT = `name:scope=token[,name:scope=token…], scope one of ${ADMIN_SCOPES.join(", ")}`;

export interface AdminIdentity {
  readonly name: string;
  readonly scope: AdminScope;
}

export class AdminTokens {
  private readonly holders: { identity: AdminIdentity; digest: Buffer }[];
  /** Names given without a scope: read only. */
  readonly unscoped: readonly string[];

  constructor(text: string, acquirerSecrets: ReadonlyMap<string, string> = new Map()) {
    const entries = text
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e.length > 0);
    if (entries.length === 0) throw new Error(`QUANTA_ADMIN_TOKENS is required: ${FORMAT}`);
    const forbidden = new Set(acquirerSecrets.values());
    const unscoped: string[] = [];
    this.holders = entries.map((entry) => {
      const eq = entry.indexOf("=");
      const head = eq < 0 ? "" : entry.slice(0, eq);
      const colon = head.indexOf(":");
      const name = colon < 0 ? head : head.slice(0, colon);
      const scope = colon < 0 ? "read" : head.slice(colon + 1);
      const token = entry.slice(eq + 1);
      if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name))
        throw new Error(
          `QUANTA_ADMIN_TOKENS: "${name || entry.slice(0, 8)}…" needs a name of [A-Za-z0-9_.@-] (${FORMAT})`,
        );
      if (!isAdminScope(scope))
        throw new Error(
          `QUANTA_ADMIN_TOKENS: ${name} has scope "${scope.slice(0, 20)}"; scopes are ${ADMIN_SCOPES.join(", ")}`,
        );
      if (token.length < TOKEN_MIN_LENGTH)
        throw new Error(`QUANTA_ADMIN_TOKENS: the token of ${name} is shorter than ${TOKEN_MIN_LENGTH} characters`);
      if (forbidden.has(token))
        throw new Error(`QUANTA_ADMIN_TOKENS: the token of ${name} is an acquirer secret; the admin API needs its own`);
      if (colon < 0) unscoped.push(name);
      return { identity: { name, scope }, digest: sha256(token) };
    });
    this.holders.forEach((a, i) => {
      const twin = this.holders.slice(i + 1).find((b) => timingSafeEqual(a.digest, b.digest));
      if (twin)
        throw new Error(
          `QUANTA_ADMIN_TOKENS: ${a.identity.name} and ${twin.identity.name} share a token; each holder needs its own`,
        );
    });
    this.unscoped = unscoped;
  }

  /** Who holds the token of an `authorization: Bearer …` header, and with what scope; or undefined. */
  whoIs(header: string | undefined): AdminIdentity | undefined {
    const m = /^Bearer ([^\s]+)$/.exec(header ?? "");
    if (!m) return undefined;
    const given = sha256(m[1]!);
    let found: AdminIdentity | undefined;
    for (const h of this.holders) if (timingSafeEqual(given, h.digest)) found ??= h.identity;
    return found;
  }
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
