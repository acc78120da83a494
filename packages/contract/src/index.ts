export * from "./signature.js";
export * from "./payment-body.js";
export * from "./answers.js";
export * from "./refund-body.js";
