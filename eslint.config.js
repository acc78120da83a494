// Lint for the whole monorepo (npm run lint, which then runs `prettier --check .`; .ci/run runs it).
// Layout is Prettier's alone (.prettierrc.json; `npm run format` applies it), so eslint-config-prettier
// switches off every stylistic rule that could disagree with it. Two jobs here:
//   1. typescript-eslint's recommended rules, without type information (a type-aware pass costs
//      minutes on this 2-core box; tsc -b already type-checks);
//   2. the architecture's import rules, which nothing else checks: the domain imports no IO,
//      packages never import services, services never import each other, and no production code
//      imports the test kit's CLI package.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import prettierOff from "eslint-config-prettier";

const IO_MODULES = ["pg", "kysely", "ioredis", "bullmq", "fastify", "pino", "prom-client", "undici"];
const NODE_IO = [
  "node:fs",
  "node:fs/promises",
  "node:net",
  "node:http",
  "node:https",
  "node:child_process",
  "node:os",
  "node:dgram",
  "node:worker_threads",
];
const SERVICES = ["ingress", "worker", "exporter", "admin"];

/** no-restricted-imports with one message per forbidden module (paths) or package scope (patterns). */
const forbid = (paths, patterns, why) => ({
  "no-restricted-imports": [
    "error",
    {
      paths: paths.map((name) => ({ name, message: why })),
      patterns: patterns.map((group) => ({ group: [group], message: why })),
    },
  ],
});

export default tseslint.config(
  {
    ignores: [
      "**/dist/**",
      "**/node_modules/**",
      "k6-results/**",
      "bench/results/**",
      "rush-results/**",
      "**/*.d.ts",
      "loadtest/k6/**/*.js",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        queueMicrotask: "readonly",
        performance: "readonly",
        URL: "readonly",
        fetch: "readonly",
        NodeJS: "readonly",
      },
    },
    rules: {
      // `_`-prefixed names are deliberately unused (a callback's position, a destructured rest).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
    },
  },
  prettierOff,
  {
    // Migrations must not depend on today's schema type: Kysely<any> is kysely's own advice for them.
    files: ["packages/db/src/migrations/*.ts", "packages/db/src/migrate.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
  {
    files: ["packages/domain/src/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: forbid(
      [...IO_MODULES, ...NODE_IO],
      ["@quanta/*"],
      "packages/domain holds the pure rules: no IO, no other quanta package (node:crypto for hashing is the one exception)",
    ),
  },
  {
    files: ["packages/*/src/**/*.ts"],
    ignores: ["**/*.test.ts", "packages/domain/**"],
    rules: forbid(
      [],
      SERVICES.map((s) => `@quanta/${s}`),
      "a package never imports a service: services are built from packages, not the other way round",
    ),
  },
  ...SERVICES.map((service) => ({
    files: [`services/${service}/src/**/*.ts`],
    rules: forbid(
      ["@quanta/cli"],
      SERVICES.filter((s) => s !== service).map((s) => `@quanta/${s}`),
      "a service never imports another service, nor the CLI and its test kit: shared code belongs in a package",
    ),
  })),
);
