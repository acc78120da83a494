export * from "./scenario.js";
export * from "./payments.js";
export * from "./client.js";
export * from "./run.js";
export * from "./stats.js";
