import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError, RETIRED_SETTINGS, parseEnv } from "./env.js";

/**
 * The settings are read once at start: an operator's mistake must stop the process with a message
 * that names the variable, and nothing else may be guessed.
 */
describe("parseEnv", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("fills every unset setting with its default and coerces the strings the environment holds", () => {
    const env = parseEnv({ PORT: "0", QUANTA_PARTITIONS: "8" });
    expect(env.PORT).toBe(0);
    expect(env.QUANTA_PARTITIONS).toBe(8);
    expect(env.REDIS_URL).toBe("redis://127.0.0.1:6379");
    expect(env.LOG_LEVEL).toBe("info");
  });

  it("accepts a Redis Cluster's seed nodes", () => {
    const url = "redis-cluster://10.0.0.1:7000,10.0.0.2:7000";
    expect(parseEnv({ REDIS_URL: url }).REDIS_URL).toBe(url);
  });

  it("refuses bad values with a ConfigError naming every variable at fault", () => {
    let caught: unknown;
    try {
      parseEnv({ PORT: "70000", QUANTA_PARTITIONS: "1.5", REDIS_URL: "http://127.0.0.1:6379", LOG_LEVEL: "loud" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const lines = (caught as ConfigError).message.split("\n").slice(1);
    expect(lines.map((l) => l.match(/^ {2}- ([A-Z_]+):/)?.[1])).toEqual(
      expect.arrayContaining(["PORT", "QUANTA_PARTITIONS", "REDIS_URL", "LOG_LEVEL"]),
    );
    expect(lines).toHaveLength(4);
  });

  it("refuses a partition count outside 1..256 rather than clamping it", () => {
    expect(() => parseEnv({ QUANTA_PARTITIONS: "0" })).toThrow(/QUANTA_PARTITIONS/);
    expect(() => parseEnv({ QUANTA_PARTITIONS: "257" })).toThrow(/QUANTA_PARTITIONS/);
  });

  it("says so when given a retired setting, and still starts", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    const [name] = Object.keys(RETIRED_SETTINGS);
    expect(name).toBeDefined();
    expect(parseEnv({ [name!]: "1" }).PORT).toBe(8080);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining(`${name} is ignored`), {
      code: "QUANTA_RETIRED_SETTING",
    });
  });
});
