import { parseArgs } from "node:util";
import type { Env } from "@quanta/config";
import type { FileRead } from "./verify-files.js";

/**
 * The CLI's options and the checks on their values. Every command shares one option list, so a flag
 * of another command is accepted and ignored rather than refused; a value that is wrong is a
 * UsageError, which main prints with the usage text.
 */
export class UsageError extends Error {}

const OPTIONS = {
  rate: { type: "string" },
  duration: { type: "string" },
  payers: { type: "string" },
  workers: { type: "string" },
  ingresses: { type: "string" },
  partitions: { type: "string" },
  "redis-cluster": { type: "boolean" },
  rounds: { type: "string" },
  seconds: { type: "string" },
  scenario: { type: "string" },
  seed: { type: "string" },
  campaign: { type: "string" },
  "keep-db": { type: "boolean" },
  "refund-share": { type: "string" },
  rates: { type: "string" },
  reps: { type: "string" },
  step: { type: "string" },
  systems: { type: "string" },
  acknowledged: { type: "string" },
  answers: { type: "string" },
  out: { type: "string" },
  day: { type: "string" },
  close: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export function parseCliArgs(args: string[]) {
  return parseArgs({ args, allowPositionals: true, options: OPTIONS });
}

export type CliValues = ReturnType<typeof parseCliArgs>["values"];

/** What a command that takes the shared options is handed. */
export interface CommandInput {
  values: CliValues;
  positionals: string[];
  env: Env;
}

export function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive integer, got ${value}`);
  return n;
}

/** A comma-separated list of positive integers ("100,200,500"), or the fallback when the flag is absent. */
export function positiveInts(value: string | undefined, fallback: readonly number[], name: string): number[] {
  return value ? value.split(",").map((x) => positiveInt(x, name)!) : [...fallback];
}

export function share(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new UsageError(`--refund-share must be a number from 0 to 1, got ${value}`);
  return n;
}

/** A file's entries, or its problem as a UsageError: a wrong file is the operator's to fix. */
export function entries<T>(read: FileRead<T>): T[] {
  if (!read.ok) throw new UsageError(read.problem);
  return read.entries;
}
