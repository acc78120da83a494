import { pino, type DestinationStream, type Logger } from "pino";
import { redactDeep } from "./redact.js";

/**
 * The root logger. Secrets, signatures and payer ids never reach a log line: every object a log
 * call is given, and every child logger's bindings, pass through redactDeep (any depth, both
 * spellings of the payer id, Postgres's quoted values in error details). Payer ids are also
 * pseudonymised at the ingress before anything is logged; this is the second line.
 */
export function createLogger(
  service: string,
  level = process.env.LOG_LEVEL ?? "info",
  destination?: DestinationStream,
): Logger {
  const options = {
    name: service,
    level,
    base: { service, pid: process.pid },
    formatters: {
      // Runs before serializers: errors arrive here as Errors and leave as redacted plain objects.
      log: (object: Record<string, unknown>) => redactDeep(object) as Record<string, unknown>,
      bindings: (bindings: Record<string, unknown>) => redactDeep(bindings) as Record<string, unknown>,
    },
    // redactDeep already made errors plain (type, message, stack, own fields): keep its shape.
    serializers: { err: (error: unknown) => error },
  };
  const logger = destination ? pino(options, destination) : pino(options);
  // pino applies formatters.bindings to the root's bindings only; a child's (and a grandchild's,
  // which inherits this) pass through redactDeep here.
  const child = logger.child;
  logger.child = function (
    this: Logger,
    bindings: Record<string, unknown>,
    childOptions?: Parameters<Logger["child"]>[1],
  ) {
    return child.call(this, redactDeep(bindings) as Record<string, unknown>, childOptions);
  } as Logger["child"];
  return logger;
}

export type { Logger };
