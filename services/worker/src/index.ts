export * from "./server.js";
export * from "./ownership.js";
export * from "./partition-drain.js";
