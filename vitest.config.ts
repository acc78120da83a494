import { defineConfig } from "vitest/config";

// Unit tests sit next to the code (src/**/*.test.ts); integration tests (real Postgres and Redis,
// one database and Redis prefix per file) sit in the test/ folder of the package or service they
// test, and share what they need through @quanta/test-kit.
// Files run one at a time: the machine has 2 cores and the integration files
// start several processes each.
//
// Three projects: "unit" (no Postgres, no Redis: `npm run test:unit`); "integration", everything
// that talks to the real Postgres and REDIS_URL (one Redis); "redis-cluster", the queue
// integration tests again on a real Redis Cluster (3 masters, one replica each) that its global
// setup starts and stops (PrivateRedisCluster), with REDIS_URL pointing at it. `npm test` runs all three.
const CLUSTER_FILES = [
  "services/ingress/test/queue-path.test.ts",
  "services/ingress/test/pending-and-overload.test.ts",
  "packages/owner/test/batch-flusher.test.ts",
];

export default defineConfig({
  test: {
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: [
            "lint-boundaries.test.ts",
            "packages/*/src/**/*.test.ts",
            "services/*/src/**/*.test.ts",
            "loadtest/driver/src/**/*.test.ts",
            "loadtest/k6/*.test.ts",
            "infra/**/*.test.ts",
          ],
          exclude: ["**/node_modules/**", "**/dist/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["packages/*/test/**/*.test.ts", "services/*/test/**/*.test.ts"],
          // The fault suite has its own command (npm run test:faults, vitest.faults.config.ts).
          exclude: ["**/node_modules/**", "**/dist/**", "services/*/test/faults/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "redis-cluster",
          include: CLUSTER_FILES,
          globalSetup: ["./vitest.redis-cluster.setup.ts"],
          setupFiles: ["./vitest.redis-cluster.env.ts"],
        },
      },
    ],
  },
});
