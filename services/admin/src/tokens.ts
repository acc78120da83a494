import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Admin bearer tokens, `name=token[,name=token…]` from QUANTA_ADMIN_TOKENS. The name is who the
 * audit log says acted. Tokens are compared in constant time (by their SHA-256, so lengths do
 * not leak either), and must not equal any acquirer secret: the admin API has its own secret.
 */
const TOKEN_MIN_LENGTH = 32;

export class AdminTokens {
  private readonly digests: { name: string; digest: Buffer }[];

  constructor(text: string, acquirerSecrets: ReadonlyMap<string, string> = new Map()) {
    const entries = text.split(",").map((e) => e.trim()).filter((e) => e.length > 0);
    if (entries.length === 0) throw new Error("QUANTA_ADMIN_TOKENS is required: name=token[,name=token…]");
    const forbidden = new Set(acquirerSecrets.values());
    this.digests = entries.map((entry) => {
      const eq = entry.indexOf("=");
      const name = entry.slice(0, eq);
      const token = entry.slice(eq + 1);
      if (eq <= 0 || !/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) throw new Error(`QUANTA_ADMIN_TOKENS: "${name || entry.slice(0, 8)}…" needs a name of [A-Za-z0-9_.@-]`);
      if (token.length < TOKEN_MIN_LENGTH) throw new Error(`QUANTA_ADMIN_TOKENS: the token of ${name} is shorter than ${TOKEN_MIN_LENGTH} characters`);
      if (forbidden.has(token)) throw new Error(`QUANTA_ADMIN_TOKENS: the token of ${name} is an acquirer secret; the admin API needs its own`);
      return { name, digest: sha256(token) };
    });
  }

  /** The name behind an `authorization: Bearer …` header, or undefined. */
  whoIs(header: string | undefined): string | undefined {
    const m = /^Bearer ([^\s]+)$/.exec(header ?? "");
    if (!m) return undefined;
    const given = sha256(m[1]!);
    let found: string | undefined;
    for (const t of this.digests) if (timingSafeEqual(given, t.digest)) found ??= t.name;
    return found;
  }
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
