export * from "./signature.js";
export * from "./payment-body.js";
export * from "./answers.js";
export * from "./refund-body.js";
export * from "./payer-ref.js";
