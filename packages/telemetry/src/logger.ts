import { pino, type Logger } from "pino";

/**
 * The root logger. Signatures and payer ids never reach a log line: they are
 * redacted wherever they appear in logged objects.
 */
export function createLogger(service: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({
    name: service,
    level,
    base: { service, pid: process.pid },
    redact: {
      paths: [
        "payerId",
        "*.payerId",
        "attempt.payerId",
        "req.headers[\"x-quanta-signature\"]",
        "headers[\"x-quanta-signature\"]",
        "secret",
        "*.secret",
      ],
      censor: "[redacted]",
    },
  });
}

export type { Logger };
