import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { envSchema } from "@quanta/config";
import { Deployment, type IDeployment } from "kubernetes-models/apps/v1/Deployment";
import {
  HorizontalPodAutoscaler,
  type IHorizontalPodAutoscaler,
} from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { PodDisruptionBudget, type IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap, type IConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Secret, type ISecret } from "kubernetes-models/v1/Secret";
import { Service, type IService } from "kubernetes-models/v1/Service";
import type { IContainer } from "kubernetes-models/v1/Container";

/**
 * The Kubernetes manifests of infra/k8s, checked without a cluster: every object against the
 * Kubernetes OpenAPI schema (kubernetes-models), plus a strict pass for field names the schema
 * lets through, plus the cross-references a schema cannot see (selectors, ports, env sources,
 * the settings parser). Nothing here talks to a cluster. It stays one file over 300 lines because
 * its cases read as one checklist over the same loaded manifests, and the schema and strict-field
 * helpers above them serve these cases alone.
 */
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../..");

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}
interface Loaded {
  file: string;
  object: Manifest;
}

type ModelClass = new (data: never) => { validate(): void };

/** The kinds these manifests may use. Anything else fails, so a new file cannot skip validation. */
const MODELS: Record<string, ModelClass> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
};

function modelFor(object: { apiVersion?: unknown; kind?: unknown }): ModelClass {
  const model = MODELS[`${String(object.apiVersion)}/${String(object.kind)}`];
  if (!model)
    throw new Error(
      `no kubernetes-models class mapped for ${String(object.apiVersion)} ${String(object.kind)}: add it to MODELS`,
    );
  return model;
}

function validate(object: { apiVersion?: unknown; kind?: unknown }): void {
  const Model = modelFor(object);
  new Model(object as never).validate();
}

/** YAML 1.1, as Kubernetes reads it (so `on`, `yes`, `off` are booleans here too). */
function parseYaml(file: string): unknown[] {
  const text = readFileSync(join(here, file), "utf8");
  const docs = parseAllDocuments(text, { version: "1.1" });
  if (!Array.isArray(docs)) return [];
  return docs.map((doc, i) => {
    if (doc.errors.length > 0)
      throw new Error(`${file}, document ${i + 1}: ${doc.errors.map((e) => e.message).join("; ")}`);
    return doc.toJS() as unknown;
  });
}

const yamlFiles = readdirSync(here)
  .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
  .sort();
const objectFiles = yamlFiles.filter((f) => f !== "kustomization.yaml");
const loaded: Loaded[] = objectFiles.flatMap((file) =>
  parseYaml(file)
    .filter((doc) => doc !== null && doc !== undefined)
    .map((doc) => ({ file, object: doc as Manifest })),
);

function all<T>(kind: string): T[] {
  return loaded.filter((l) => l.object.kind === kind).map((l) => l.object as unknown as T);
}
function named<T>(kind: string, name: string | undefined): T | undefined {
  return all<T & Manifest>(kind).find((o) => o.metadata.name === name);
}

const deployments = all<IDeployment & Manifest>("Deployment");
const configMap = named<IConfigMap & Manifest>("ConfigMap", "quanta-config");
const secretTemplate = named<ISecret & Manifest>("Secret", "quanta-secrets");

function podLabels(d: IDeployment): Record<string, string> {
  return d.spec?.template.metadata?.labels ?? {};
}
function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}
function containers(d: IDeployment): IContainer[] {
  return d.spec?.template.spec?.containers ?? [];
}
function exposes(d: IDeployment, port: string | number | undefined): boolean {
  return containers(d).some((c) =>
    (c.ports ?? []).some((p) => (typeof port === "number" ? p.containerPort === port : p.name === port)),
  );
}

/** CPU in millicores, memory in bytes; only the notations these files use. */
function quantity(value: string | number | undefined, resource: "cpu" | "memory"): number {
  const text = String(value);
  if (resource === "cpu") {
    const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(text);
    if (!m) throw new Error(`cpu quantity ${text}`);
    return Number(m[1]) * (m[2] ? 1 : 1000);
  }
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(text);
  if (!m) throw new Error(`memory quantity ${text}`);
  return Number(m[1]) * { "": 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] ?? ""]!;
}

// ---------------------------------------------------------------------------------------------
// Strict field names. The Kubernetes OpenAPI schema does not forbid unknown fields, so
// kubernetes-models accepts `readinesProbe:` (a typo the API server drops or, with strict field
// validation, rejects). The property names of each type are read from kubernetes-models' own
// declaration files (one interface per file, one property per line), following nested types.

const requireHere = createRequire(import.meta.url);
const modelsRoot = dirname(requireHere.resolve("kubernetes-models/package.json"));

interface Shape {
  /** Property name -> declaration file of its (element) type, or null for a leaf. */
  props: Map<string, string | null>;
}
const shapes = new Map<string, Shape | null>();

function declarationFile(from: string, specifier: string): string {
  if (specifier.startsWith(".")) return `${resolve(dirname(from), specifier)}.d.ts`;
  const parts = specifier.split("/");
  const pkg = parts.slice(0, specifier.startsWith("@") ? 2 : 1).join("/");
  const rest = parts.slice(pkg.split("/").length).join("/");
  const pkgRoot = dirname(createRequire(from).resolve(`${pkg}/package.json`));
  return `${join(pkgRoot, rest)}.d.ts`;
}

function shapeOf(file: string): Shape | null {
  if (shapes.has(file)) return shapes.get(file)!;
  const text = readFileSync(file, "utf8");
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) imports.set(m[1]!, m[2]!);
  const head = /^export interface I\w+( extends TypeMeta)? \{$/m.exec(text);
  let shape: Shape | null = null;
  if (head) {
    const body = text.slice(head.index + head[0].length, text.indexOf("\n}", head.index));
    const props = new Map<string, string | null>();
    if (head[1]) {
      props.set("apiVersion", null);
      props.set("kind", null);
    }
    for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
      // A named type (or an array of one) is followed; literals, unions and records are leaves.
      const typeName = /^(?:Array<)?(\w+)/.exec(m[2]!)?.[1];
      const specifier = typeName ? imports.get(typeName) : undefined;
      props.set(m[1]!, specifier ? declarationFile(file, specifier) : null);
    }
    shape = { props };
  }
  shapes.set(file, shape);
  return shape;
}

function unknownFields(value: unknown, file: string, path: string): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [];
  const shape = shapeOf(file);
  if (!shape) return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) => {
    if (!shape.props.has(key)) return [`${path}.${key}`];
    const childFile = shape.props.get(key);
    if (!childFile) return [];
    if (Array.isArray(child)) return child.flatMap((item, i) => unknownFields(item, childFile, `${path}.${key}[${i}]`));
    return unknownFields(child, childFile, `${path}.${key}`);
  });
}

function strictCheck(object: Manifest): string[] {
  modelFor(object);
  return unknownFields(object, join(modelsRoot, object.apiVersion, `${object.kind}.d.ts`), object.kind);
}

// ---------------------------------------------------------------------------------------------

describe("infra/k8s manifests", () => {
  it("are all found, parsed and open with a # header", () => {
    expect(objectFiles.length).toBeGreaterThanOrEqual(10);
    for (const file of yamlFiles) expect(readFileSync(join(here, file), "utf8").startsWith("#"), file).toBe(true);
    for (const file of objectFiles)
      expect(
        loaded.some((l) => l.file === file),
        `${file} holds no object`,
      ).toBe(true);
  });

  it("hold only objects that the Kubernetes API schema accepts (kubernetes-models)", () => {
    for (const { file, object } of loaded) {
      expect(() => validate(object), `${file}: ${object.kind} ${object.metadata?.name}`).not.toThrow();
      expect(strictCheck(object), `${file}: fields the API does not know`).toEqual([]);
    }
  });

  it("validation is real: broken copies of the ingress Deployment are rejected", () => {
    const ingress = named<Manifest & IDeployment>("Deployment", "quanta-ingress")!;
    expect(() => validate(ingress)).not.toThrow();
    const copy = () => structuredClone(ingress) as Manifest & IDeployment;

    const wrongType = copy();
    (wrongType.spec as unknown as Record<string, unknown>).replicas = "two";
    expect(() => validate(wrongType)).toThrow(/replicas/);

    const noName = copy();
    delete (noName.spec!.template.spec!.containers[0] as Partial<IContainer>).name;
    expect(() => validate(noName)).toThrow(/name/);

    const typo = copy();
    const c = typo.spec!.template.spec!.containers[0] as unknown as Record<string, unknown>;
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    expect(strictCheck(typo)).toEqual(["Deployment.spec.template.spec.containers[0].readinesProbe"]);

    expect(() => validate({ apiVersion: "apps/v1", kind: "StatefulSet" })).toThrow(/no kubernetes-models class/);
  });

  it("are listed in full by kustomization.yaml, all in namespace quanta", () => {
    const [kustomization] = parseYaml("kustomization.yaml") as Array<{
      kind: string;
      namespace: string;
      resources: string[];
    }>;
    expect(kustomization!.kind).toBe("Kustomization");
    expect([...kustomization!.resources].sort()).toEqual(objectFiles);
    expect(kustomization!.namespace).toBe("quanta");
    expect(all<Manifest>("Namespace").map((n) => n.metadata.name)).toEqual(["quanta"]);
    for (const { file, object } of loaded)
      if (object.kind !== "Namespace") expect(object.metadata.namespace, file).toBe("quanta");
  });

  it("run each Deployment with probes, resources and a locked-down security context", () => {
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual([
      "quanta-exporter",
      "quanta-ingress",
      "quanta-worker",
    ]);
    for (const d of deployments) {
      const name = d.metadata.name;
      expect(selects(d.spec?.selector.matchLabels, podLabels(d)), `${name}: selector matches its own pods`).toBe(true);
      const pod = d.spec!.template.spec!;
      // Service links would set QUANTA_EXPORTER_PORT=tcp://... from the quanta-exporter Service.
      expect(pod.enableServiceLinks, name).toBe(false);
      expect(pod.securityContext?.runAsNonRoot, name).toBe(true);
      expect(containers(d).length, name).toBeGreaterThan(0);
      for (const c of containers(d)) {
        const where = `${name}/${c.name}`;
        expect(c.readinessProbe?.httpGet?.path, where).toBe("/readyz");
        expect(exposes(d, c.readinessProbe?.httpGet?.port), `${where}: readiness probe port is declared`).toBe(true);
        expect(c.livenessProbe?.httpGet?.path, where).toBe("/healthz");
        expect(exposes(d, c.livenessProbe?.httpGet?.port), `${where}: liveness probe port is declared`).toBe(true);
        for (const resource of ["cpu", "memory"] as const) {
          const request = c.resources?.requests?.[resource];
          const limit = c.resources?.limits?.[resource];
          expect(request, `${where}: ${resource} request`).toBeDefined();
          expect(limit, `${where}: ${resource} limit`).toBeDefined();
          expect(quantity(request, resource), `${where}: ${resource} request <= limit`).toBeLessThanOrEqual(
            quantity(limit, resource),
          );
        }
        const sc = c.securityContext;
        expect(sc?.runAsNonRoot, where).toBe(true);
        expect(sc?.allowPrivilegeEscalation, where).toBe(false);
        expect(sc?.readOnlyRootFilesystem, where).toBe(true);
        expect(sc?.capabilities?.drop, where).toContain("ALL");
        // The script the container runs is a build output of a source file in this repository.
        const script = c.command?.[1] ?? "";
        expect(c.command?.[0], where).toBe("node");
        expect(
          existsSync(join(repoRoot, script.replace("/dist/", "/src/").replace(/\.js$/, ".ts"))),
          `${where}: ${script} has a source`,
        ).toBe(true);
      }
    }
  });

  it("open on each Deployment the port its setting names", () => {
    const portSetting: Record<string, string> = {
      ingress: "PORT",
      worker: "QUANTA_WORKER_PORT",
      exporter: "QUANTA_EXPORTER_PORT",
    };
    for (const d of deployments) {
      const component = podLabels(d)["app.kubernetes.io/component"] ?? "";
      const setting = portSetting[component];
      expect(setting, `${d.metadata.name}: component label`).toBeDefined();
      const port = Number(configMap?.data?.[setting!]);
      expect(exposes(d, port), `${d.metadata.name}: containerPort ${setting}=${port}`).toBe(true);
      expect(d.spec!.template.metadata!.annotations?.["prometheus.io/port"], d.metadata.name).toBe(String(port));
    }
  });

  it("scale the ingress with an HPA on CPU, inside the Postgres connection budget", () => {
    const hpas = all<IHorizontalPodAutoscaler & Manifest>("HorizontalPodAutoscaler");
    expect(hpas).toHaveLength(1);
    const hpa = hpas[0]!;
    expect(hpa.spec!.scaleTargetRef).toMatchObject({
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "quanta-ingress",
    });
    const target = named<IDeployment & Manifest>("Deployment", hpa.spec!.scaleTargetRef.name)!;
    expect(target).toBeDefined();
    expect(hpa.spec!.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec!.metrics?.[0]?.resource?.name).toBe("cpu");
    // A utilisation target is a share of the request; and an applied `replicas` would fight the HPA.
    for (const c of containers(target)) expect(c.resources?.requests?.cpu).toBeDefined();
    expect(target.spec?.replicas).toBeUndefined();

    // Every ingress and worker may open QUANTA_PG_POOL_MAX connections, the exporter 2
    // (services/exporter/src/main.ts); Postgres's default max_connections is 100, 3 reserved.
    const pool = Number(configMap!.data!.QUANTA_PG_POOL_MAX ?? 8);
    const workers = named<IDeployment & Manifest>("Deployment", "quanta-worker")!.spec!.replicas ?? 1;
    expect(hpa.spec!.maxReplicas * pool + workers * pool + 2).toBeLessThanOrEqual(97);
  });

  it("give each PodDisruptionBudget and Service exactly one Deployment's pods", () => {
    const pdbs = all<IPodDisruptionBudget & Manifest>("PodDisruptionBudget");
    expect(pdbs.map((p) => p.metadata.name).sort()).toEqual(["quanta-ingress", "quanta-worker"]);
    for (const pdb of pdbs) {
      const matched = deployments.filter((d) => selects(pdb.spec?.selector?.matchLabels, podLabels(d)));
      expect(
        matched.map((d) => d.metadata.name),
        pdb.metadata.name,
      ).toEqual([pdb.metadata.name]);
    }
    expect(named<IPodDisruptionBudget>("PodDisruptionBudget", "quanta-worker")!.spec!.maxUnavailable).toBe(1);

    const services = all<IService & Manifest>("Service");
    expect(services.length).toBeGreaterThanOrEqual(2);
    for (const service of services) {
      const matched = deployments.filter((d) => selects(service.spec?.selector, podLabels(d)));
      expect(matched, `${service.metadata.name} selects one Deployment`).toHaveLength(1);
      for (const port of service.spec?.ports ?? []) {
        expect(
          exposes(matched[0]!, port.targetPort ?? port.port),
          `${service.metadata.name}: targetPort ${port.targetPort}`,
        ).toBe(true);
      }
    }
  });

  it("take every environment variable from a ConfigMap or Secret key that exists", () => {
    const sources = { ConfigMap: all<IConfigMap & Manifest>("ConfigMap"), Secret: all<ISecret & Manifest>("Secret") };
    const keysOf = (kind: "ConfigMap" | "Secret", name: string | undefined): string[] | undefined => {
      const o = (
        sources[kind] as Array<Manifest & { data?: Record<string, string>; stringData?: Record<string, string> }>
      ).find((s) => s.metadata.name === name);
      return o ? [...Object.keys(o.data ?? {}), ...Object.keys(o.stringData ?? {})] : undefined;
    };
    for (const d of deployments) {
      for (const c of containers(d)) {
        const where = `${d.metadata.name}/${c.name}`;
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef)
            expect(
              keysOf("ConfigMap", from.configMapRef.name),
              `${where}: ConfigMap ${from.configMapRef.name}`,
            ).toBeDefined();
          if (from.secretRef)
            expect(keysOf("Secret", from.secretRef.name), `${where}: Secret ${from.secretRef.name}`).toBeDefined();
        }
        for (const env of c.env ?? []) {
          const cm = env.valueFrom?.configMapKeyRef;
          const secret = env.valueFrom?.secretKeyRef;
          if (cm) expect(keysOf("ConfigMap", cm.name), `${where}: ${env.name}`).toContain(cm.key);
          if (secret) expect(keysOf("Secret", secret.name), `${where}: ${env.name}`).toContain(secret.key);
        }
      }
    }
    // The ingress cannot start without the acquirers' secrets (services/ingress/src/server.ts).
    const ingressEnv = containers(named<IDeployment>("Deployment", "quanta-ingress")!).flatMap((c) => c.env ?? []);
    expect(ingressEnv.map((e) => e.name)).toEqual(
      expect.arrayContaining(["DATABASE_URL", "QUANTA_ACQUIRER_SECRETS", "QUANTA_PAYER_KEY"]),
    );
  });

  it("set only settings that packages/config parses, with values it accepts", () => {
    const known = Object.keys(envSchema.shape);
    const data = configMap!.data!;
    for (const key of Object.keys(data)) expect(known, `ConfigMap key ${key}`).toContain(key);
    const parsed = envSchema.safeParse({ ...data, DATABASE_URL: "postgres://quanta:password@postgres:5432/quanta" });
    expect(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([]);
    // One worker per partition: a worker beyond that owns nothing.
    expect(named<IDeployment>("Deployment", "quanta-worker")!.spec!.replicas).toBe(Number(data.QUANTA_PARTITIONS));
  });

  it("ship the Secret as a template that cannot start anything and that apply -k leaves alone", () => {
    expect(secretTemplate).toBeDefined();
    expect(secretTemplate!.data).toBeUndefined();
    const values = secretTemplate!.stringData ?? {};
    expect(Object.keys(values).sort()).toEqual([
      "DATABASE_URL",
      "QUANTA_ACQUIRER_SECRETS",
      "QUANTA_ADMIN_TOKENS",
      "QUANTA_PAYER_KEY",
    ]);
    for (const [key, value] of Object.entries(values)) {
      expect(Object.keys(envSchema.shape), key).toContain(key);
      expect(value, `${key} has no usable value`).toBe("");
    }
    const parsed = envSchema.safeParse({ ...configMap!.data, ...values });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.path.join("."))).toContain("DATABASE_URL");
    // kustomize drops objects with this annotation from what it applies.
    expect(secretTemplate!.metadata.annotations?.["config.kubernetes.io/local-config"]).toBe("true");
  });
});
