// The test kit: isolated worlds on the real Postgres and Redis, test campaigns, polling, stacks in
// the test process, the fault suite's verdict and a cuttable TCP proxy. Tests alone import it
// (eslint.config.js).
export * from "./world.js";
export * from "./owner-world.js";
export * from "./campaign.js";
export * from "./poll.js";
export * from "./in-process-stack.js";
export * from "./admin-stack.js";
export * from "./fault-harness.js";
export * from "./cuttable-proxy.js";
