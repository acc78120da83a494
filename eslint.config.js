// Lint for the whole monorepo (npm run lint, which then runs `prettier --check .`; .ci/run runs it).
// Layout is Prettier's alone (.prettierrc.json; `npm run format` applies it), so eslint-config-prettier
// switches off every stylistic rule that could disagree with it. Two jobs here:
//   1. typescript-eslint's recommended rules, without type information (a type-aware pass costs
//      minutes on this 2-core box; tsc -b already type-checks);
//   2. the architecture's import rules, which nothing else checks: the domain imports no IO,
//      packages never import services, services never import each other nor the CLI, and no
//      production code imports the test kit (@quanta/test-kit).
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

// The test kit starts whole stacks, creates and drops databases and imports vitest: shipped in
// production code it would put all of that one import away from a running service.
const TEST_KIT = {
  name: "@quanta/test-kit",
  message: "production code never imports the test kit: it is for tests (test/ folders and *.test.ts) alone",
};

/**
 * no-restricted-imports with one message per forbidden module (paths) or package scope (patterns),
 * plus the test kit unless `testKit` is false (test files may import it). One rule per file: a later
 * block naming no-restricted-imports replaces an earlier one, so every forbidden import of a file
 * goes in one call.
 */
const forbid = (paths, patterns, why, testKit = true) => ({
  "no-restricted-imports": [
    "error",
    {
      paths: [...paths.map((name) => ({ name, message: why })), ...(testKit ? [TEST_KIT] : [])],
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
      false, // "@quanta/*" already covers the test kit
    ),
  },
  {
    // The test kit runs whole stacks, so it may import services; it is never imported by them.
    files: ["packages/*/src/**/*.ts"],
    ignores: ["**/*.test.ts", "packages/domain/**", "packages/test-kit/**"],
    rules: forbid(
      [],
      SERVICES.map((s) => `@quanta/${s}`),
      "a package never imports a service: services are built from packages, not the other way round",
    ),
  },
  ...SERVICES.flatMap((service) => {
    const others = (testKit) =>
      forbid(
        ["@quanta/cli"],
        SERVICES.filter((s) => s !== service).map((s) => `@quanta/${s}`),
        "a service never imports another service, nor the CLI: shared code belongs in a package",
        testKit,
      );
    return [
      { files: [`services/${service}/src/**/*.ts`], rules: others(true) },
      { files: [`services/${service}/src/**/*.test.ts`], rules: others(false) },
    ];
  }),
);
