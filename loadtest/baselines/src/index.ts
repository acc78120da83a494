export * from "./contract-server.js";
export * from "./floor.js";
export * from "./direct.js";
