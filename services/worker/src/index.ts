export * from "./server.js";
export * from "@quanta/owner";
