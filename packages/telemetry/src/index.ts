export * from "./alias.js";
export * from "./logger.js";
export * from "./metrics.js";
export * from "./ops-routes.js";
export * from "./redact.js";
export * from "./system-gauges.js";
