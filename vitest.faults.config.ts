import { defineConfig } from "vitest/config";

// The fault suite (issue #6): rushes through real processes while Redis, Postgres connections and
// workers are killed, paused or frozen. Run by `npm run test:faults` (and .ci/run), one file at a
// time, each scenario bounded by its timeout.
export default defineConfig({
  test: {
    include: ["services/*/test/faults/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
