import { defineConfig } from "vitest/config";

// Unit tests sit next to the code; integration tests (real Postgres and Redis,
// one database and Redis prefix per file) live in each service's test/ folder.
// Files run one at a time: the machine has 2 cores and the integration files
// start several processes each.
export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "services/*/test/**/*.test.ts", "loadtest/driver/src/**/*.test.ts", "loadtest/k6/*.test.ts", "infra/**/*.test.ts"],
    // The fault suite has its own command (npm run test:faults, vitest.faults.config.ts).
    exclude: ["**/node_modules/**", "**/dist/**", "services/*/test/faults/**"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
