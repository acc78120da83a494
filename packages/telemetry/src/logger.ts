import { pino, type DestinationStream, type Logger } from "pino";

/**
 * The root logger. Secrets, signatures and payer ids never reach a log line:
 * they are redacted wherever they appear in logged objects (up to three
 * levels deep: an error's attempt's payment).
 */
export const REDACTED_PATHS = [
  "payerId",
  "*.payerId",
  "*.*.payerId",
  "*.*.*.payerId",
  'req.headers["x-quanta-signature"]',
  'headers["x-quanta-signature"]',
  "secret",
  "*.secret",
  "secrets",
  "*.secrets",
  "QUANTA_ACQUIRER_SECRETS",
  "*.QUANTA_ACQUIRER_SECRETS",
];

export function createLogger(service: string, level = process.env.LOG_LEVEL ?? "info", destination?: DestinationStream): Logger {
  const options = {
    name: service,
    level,
    base: { service, pid: process.pid },
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
