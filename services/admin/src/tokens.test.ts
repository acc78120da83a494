import { describe, expect, it } from "vitest";
import { grants } from "./scopes.js";
import { AdminTokens } from "./tokens.js";

const token = (c: string) => c.repeat(40);
const bearer = (t: string) => `Bearer ${t}`;

describe("admin tokens", () => {
  it("reads name:scope=token and tells who holds a token with what scope", () => {
    const tokens = new AdminTokens(`carol:read=${token("r")}, olga:operate=${token("o")},ada:administer=${token("a")}`);
    expect(tokens.whoIs(bearer(token("r")))).toEqual({ name: "carol", scope: "read" });
    expect(tokens.whoIs(bearer(token("o")))).toEqual({ name: "olga", scope: "operate" });
    expect(tokens.whoIs(bearer(token("a")))).toEqual({ name: "ada", scope: "administer" });
    expect(tokens.whoIs(bearer(token("x")))).toBeUndefined();
    expect(tokens.unscoped).toEqual([]);
  });

  it("gives an entry of the old format (name=token) read only, and names it", () => {
    const tokens = new AdminTokens(`old=${token("z")},new:administer=${token("n")}`);
    expect(tokens.whoIs(bearer(token("z")))).toEqual({ name: "old", scope: "read" });
    expect(tokens.unscoped).toEqual(["old"]);
  });

  it("keeps '=' and ':' inside a token", () => {
    const odd = `${token("q")}:=x=`;
    expect(new AdminTokens(`q:operate=${odd}`).whoIs(bearer(odd))).toEqual({ name: "q", scope: "operate" });
  });

  it("refuses to start with an unknown scope, a shared token, a short one or an acquirer's", () => {
    expect(() => new AdminTokens(`bob:admin=${token("b")}`)).toThrow(
      /QUANTA_ADMIN_TOKENS: bob has scope "admin"; scopes are read, operate, administer/,
    );
    expect(() => new AdminTokens(`bob:=${token("b")}`)).toThrow(/bob has scope ""/);
    expect(() => new AdminTokens(`a:read=${token("s")},b:administer=${token("s")}`)).toThrow(/a and b share a token/);
    expect(() => new AdminTokens("bob:read=short")).toThrow(/shorter than 32/);
    expect(() => new AdminTokens(`bob:read=${token("s")}`, new Map([["acq", token("s")]]))).toThrow(/acquirer secret/);
    expect(() => new AdminTokens("")).toThrow(/QUANTA_ADMIN_TOKENS is required: name:scope=token/);
  });

  it("orders scopes read < operate < administer", () => {
    expect([grants("read", "read"), grants("read", "operate"), grants("read", "administer")]).toEqual([
      true,
      false,
      false,
    ]);
    expect([grants("operate", "read"), grants("operate", "operate"), grants("operate", "administer")]).toEqual([
      true,
      true,
      false,
    ]);
    expect([grants("administer", "read"), grants("administer", "operate"), grants("administer", "administer")]).toEqual(
      [true, true, true],
    );
  });
});
