export * from "./app.js";
export * from "./server.js";
export * from "./intake.js";
export * from "./decision-waiter.js";
