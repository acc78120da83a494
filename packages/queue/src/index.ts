export * from "./keys.js";
export * from "./job.js";
export * from "./redis.js";
export * from "./backlog.js";
export * from "./txn-registry.js";
export * from "./options.js";
export * from "./intake-admit.js";
export * from "./partition-queue.js";
