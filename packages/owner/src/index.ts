export * from "./ownership.js";
export * from "./partition-drain.js";
export * from "./batch-flusher.js";
export * from "./ownership-options.js";
