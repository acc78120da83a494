export * from "./stack.js";
export * from "./setup.js";
export * from "./rush.js";
export * from "./redis-cleanup.js";
export * from "./testing.js";
export * from "./private-redis.js";
export * from "./settle.js";
