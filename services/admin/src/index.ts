export * from "./app.js";
export * from "./server.js";
export * from "./tokens.js";
export * from "./scopes.js";
