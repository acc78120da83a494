import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { AdminTokens } from "@quanta/admin";

/**
 * The compose files cannot run here (no Docker Compose on this machine): what can be checked
 * without it is checked. The base file has no usable default for a secret (a forgotten variable
 * stops `up` with a message), gives its admin token a scope, and publishes the admin API on
 * loopback unless told otherwise. The
 * cluster variant points every quanta service at a cluster URL whose
 * seed nodes are services of the file, joins six nodes with one replica each, and makes the setup
 * wait for the join.
 */
const text = (name: string) => readFileSync(new URL(name, import.meta.url), "utf8");
const load = (name: string) => parse(text(name)) as { services: Record<string, Record<string, unknown>> };
const base = load("./docker-compose.yml");
const cluster = load("./docker-compose.redis-cluster.yml");

describe("docker-compose.yml", () => {
  it("gives no secret a default: the acquirer secret, the admin token and the payer key must be set, or up stops", () => {
    const raw = text("./docker-compose.yml");
    for (const variable of ["QUANTA_DEMO_SECRET", "QUANTA_ADMIN_TOKEN", "QUANTA_PAYER_KEY"]) {
      expect(raw, variable).toMatch(new RegExp(`\\$\\{${variable}:\\?[^}]+\\}`));
      expect(raw, variable).not.toMatch(new RegExp(`\\$\\{${variable}:?-`));
    }
    expect(raw).not.toMatch(/change-me/);
  });

  it("gives the demo's admin token a scope: administer (a token without one may only read)", () => {
    const value = (base.services.admin!.environment as { QUANTA_ADMIN_TOKENS?: string }).QUANTA_ADMIN_TOKENS!;
    const token = "t".repeat(48);
    const tokens = new AdminTokens(value.replace(/\$\{QUANTA_ADMIN_TOKEN:\?[^}]+\}/, token));
    expect(tokens.whoIs(`Bearer ${token}`)).toEqual({ name: "ops", scope: "administer" });
    expect(tokens.unscoped).toEqual([]);
  });

  it("publishes the admin API on loopback unless QUANTA_ADMIN_BIND says otherwise", () => {
    expect(base.services.admin!.ports).toEqual(["${QUANTA_ADMIN_BIND:-127.0.0.1}:9104:9104"]);
  });
});

describe("docker-compose.redis-cluster.yml", () => {
  it("gives every quanta service of the base file a redis-cluster:// URL of seed nodes it defines", () => {
    const quanta = Object.entries(base.services)
      .filter(([, s]) => JSON.stringify(s).includes("REDIS_URL") || (s as { image?: string }).image === "quanta:local")
      .map(([name]) => name);
    expect(quanta.sort()).toEqual(["admin", "exporter", "ingress", "setup", "worker-1", "worker-2"]);
    for (const name of quanta) {
      const url = (cluster.services[name]?.environment as { REDIS_URL?: string } | undefined)?.REDIS_URL;
      expect(url, name).toMatch(/^redis-cluster:\/\//);
      for (const seed of url!.slice("redis-cluster://".length).split(","))
        expect(Object.keys(cluster.services), seed).toContain(seed.split(":")[0]);
    }
  });

  it("joins six cluster-enabled nodes, one replica per master, before the setup runs", () => {
    const nodes = Object.keys(cluster.services).filter((n) => /^redis-node-\d$/.test(n));
    expect(nodes).toHaveLength(6);
    for (const n of nodes)
      expect((cluster.services[n]!.command as string[]).join(" ")).toContain("--cluster-enabled yes");
    const init = (cluster.services["redis-cluster-init"]!.command as string[]).join(" ");
    expect(init).toContain("--cluster-replicas 1");
    for (const n of nodes) expect(init).toContain(n);
    expect(cluster.services.setup!.depends_on).toEqual({
      "redis-cluster-init": { condition: "service_completed_successfully" },
    });
  });
});
