import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError, RENAMED_SETTINGS, parseEnv } from "./env.js";

/**
 * A deployment that still sets a renamed variable must start with the same bounds, and be told at
 * start which variables replace it, for the one release the old name is read.
 */
describe("renamed settings", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("reads QUANTA_WORKER_BATCH_MAX as both bounds it used to set, and warns naming them", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    const env = parseEnv({ QUANTA_WORKER_BATCH_MAX: "64" });
    expect(env.QUANTA_ROUND_ATTEMPTS_MAX).toBe(64);
    expect(env.QUANTA_IMMEDIATE_BATCH_MAX).toBe(64);
    expect(warn).toHaveBeenCalledTimes(1);
    const [message, options] = warn.mock.calls[0]!;
    expect(message).toContain("QUANTA_WORKER_BATCH_MAX is deprecated");
    expect(message).toContain("QUANTA_ROUND_ATTEMPTS_MAX and QUANTA_IMMEDIATE_BATCH_MAX");
    expect(options).toEqual({ code: "QUANTA_RENAMED_SETTING" });
  });

  it("lets a new name set alongside the old one win, and the old one fill the other", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    const env = parseEnv({ QUANTA_WORKER_BATCH_MAX: "64", QUANTA_ROUND_ATTEMPTS_MAX: "1024" });
    expect(env.QUANTA_ROUND_ATTEMPTS_MAX).toBe(1024);
    expect(env.QUANTA_IMMEDIATE_BATCH_MAX).toBe(64);
    expect(warn.mock.calls[0]![0]).toContain("read as QUANTA_IMMEDIATE_BATCH_MAX until then");
  });

  it("warns nothing and keeps the defaults when only the new names are used", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    const env = parseEnv({ QUANTA_IMMEDIATE_BATCH_MAX: "32" });
    expect(env.QUANTA_ROUND_ATTEMPTS_MAX).toBe(512);
    expect(env.QUANTA_IMMEDIATE_BATCH_MAX).toBe(32);
    expect(warn).not.toHaveBeenCalled();
  });

  it("names the old variable when its value is refused", () => {
    vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    expect(() => parseEnv({ QUANTA_WORKER_BATCH_MAX: "0" })).toThrow(ConfigError);
    expect(() => parseEnv({ QUANTA_WORKER_BATCH_MAX: "0" })).toThrow(
      /QUANTA_ROUND_ATTEMPTS_MAX \(given as QUANTA_WORKER_BATCH_MAX\)/,
    );
  });

  it("maps every old name to settings that exist", () => {
    const env = parseEnv({});
    for (const names of Object.values(RENAMED_SETTINGS)) for (const n of names) expect(env).toHaveProperty(n);
  });
});
