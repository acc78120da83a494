#!/usr/bin/env node
import { parseArgs } from "node:util";
import { parseEnv } from "@quanta/config";
import { parsePayerKey, payerRef } from "@quanta/contract";
import { CampaignFileError } from "@quanta/domain";
import {
  CampaignExistsError,
  checkAcknowledged,
  closeSettlementDay,
  connect,
  isSettlementDay,
  settlement,
  settlementDay,
  verifyDatabaseInvariants,
} from "@quanta/db";
import { settlementDayText, settlementText, writeSettlement } from "./settle.js";
import { table } from "@quanta/loadtest";
import { SEED_CAMPAIGN_PATH, loadCampaign, migrate, readCampaignFile } from "./setup.js";
import { rush, writeRushResult } from "./rush.js";
import { pgCapacity, pgCapacityText, writePgCapacity } from "./pg-capacity.js";
import { ALL_SYSTEMS, DEFAULT_RATES, SYSTEMS, bench, type SystemName } from "./bench.js";
import { chartSvg, summarize, terminalTable, writeBenchResults } from "./bench-report.js";
import { cpus, totalmem } from "node:os";
import { runK6 } from "./k6.js";
import { checkAnswers, isAcknowledged } from "./answers-check.js";
import { readAcknowledgedFile, readAnswersFile, type FileRead } from "./verify-files.js";

const USAGE = `quanta <command> [options]

commands:
  migrate                      create the database if needed and apply migrations
  load-campaign [file]         check and load a campaign file (default: the seed campaign)
  check-campaign [file]        check a campaign file without loading it
  settle --campaign ID         settlement from the decision records: per merchant per day, and the
      --out DIR                  campaign totals and leftover; writes CSV and JSON to DIR (default settlement/)
      --day YYYY-MM-DD           only that day's report (UTC+8), with its adjustments of settled days
      --close                    with --day: settle the day (once it is over); its report never changes
                                 again, and what comes in for it later is booked on the day it arrives
  rush [options]               replay the opening minute of 2020-09-13 against a fresh local stack
      --rate N                   peak arrivals per second (scenario default)
      --duration S               seconds of load (scenario default)
      --payers N                 payer population (scenario default)
      --workers N                worker processes (default 2)
      --ingresses N              ingress processes, callbacks round robin over them (default 1)
      --partitions N             partitions (default QUANTA_PARTITIONS, at least --workers)
      --redis-cluster            on a private Redis Cluster (3 masters, 1 replica each, AOF always)
      --scenario FILE            scenario file (default loadtest/scenarios/rush-0913.json)
      --seed N                   PRNG seed (default 20200913)
      --keep-db                  keep the quanta_rush database for inspection
      --refund-share X           after the rush, refund this share of the granted payments, let new
                                 payers claim the returned vouchers, and settle (default 0.05; 0: none)
  verify --campaign ID         audit a campaign in DATABASE_URL: I1, I2 (by its refund slot policy), I6, the
                               budget and refunds; I3 and I4 need what acquirers were answered:
      --answers FILE             JSON lines {"acquirerId", "txnId", "status", "answer"}, one per answer received:
                                 I3, every txn answered 200/202 decided exactly once; I4, every 200 answer
                                 equal to the stored decision
      --acknowledged FILE        I3 for a list of txns answered 200/202, one "acquirerId/txnId" per line
  payer-ref PAYER_ID           the stored form of a payer id (its pseudonym under QUANTA_PAYER_KEY), to look a
                               payer up in attempts.payer_id for support; under a retired key, run it with
                               that key in QUANTA_PAYER_KEY (rows carry their key's id as a prefix)
  k6 SCRIPT [k6 options]       run one script of loadtest/k6 in real k6 ($K6, ../shared/tools/k6 or k6 on the
                               PATH) against a private stack, then check the invariants; exit 0 when every
                               promise (and, unless -e BUDGETS=report, every budget) held
  pg-capacity [options]        what one Postgres here commits of quanta's decision rounds, nothing else in the way
      --rounds 100,200,500       round sizes (default 100,200,500)
      --partitions 1,2,4         partitions deciding at once, one connection each (default 1,2,4)
      --seconds S                seconds per measurement (default 10)
  bench [options]              open-model ladders: quanta vs direct (one txn per callback) vs floor
      --rates 250,500,…          offered rates to climb (default ${DEFAULT_RATES.join(",")})
      --reps N                   repetitions, systems alternating (default 3)
      --step S                   seconds of load per step (default 10)
      --systems a,b              subset of quanta,direct,floor, or quanta-aof (quanta on Redis with AOF always),
                                 quanta-1w (one worker process instead of two), quanta-cluster (on a private
                                 Redis Cluster: 3 masters, 1 replica each, AOF always)
      --redis-cluster            the same as --systems quanta,quanta-cluster (single Redis beside the cluster)

environment: DATABASE_URL, REDIS_URL, QUANTA_PARTITIONS (see README)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "k6") {
    // Everything after the script goes to k6 as it is (-e NAME=value, --duration, …).
    const [script, ...k6Args] = rest;
    if (!script) throw new UsageError("k6 needs a script: smoke.js, rush-0913.js, spike.js, soak.js or breakpoint.js");
    const env = parseEnv();
    return runK6({
      script,
      k6Args,
      databaseUrl: env.DATABASE_URL,
      redisUrl: env.REDIS_URL,
      partitions: env.QUANTA_PARTITIONS,
      workers: 2,
      out: (line) => console.log(line),
    });
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
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
    },
  });
  if (!command || values.help || command === "help") {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const env = parseEnv();
  switch (command) {
    case "migrate": {
      const applied = await migrate(env.DATABASE_URL, env.QUANTA_PARTITIONS);
      console.log(applied.length ? `applied: ${applied.join(", ")}` : "schema is up to date");
      return 0;
    }
    case "payer-ref": {
      if (!positionals[0]) throw new UsageError("payer-ref needs the payer id: quanta payer-ref <payerId>");
      console.log(payerRef(parsePayerKey(env.QUANTA_PAYER_KEY), positionals[0]));
      return 0;
    }
    case "check-campaign": {
      const campaign = readCampaignFile(positionals[0] ?? SEED_CAMPAIGN_PATH);
      console.log(
        `campaign ${campaign.id} is valid: ${campaign.activities.length} activities, ${campaign.activities.flatMap((a) => a.tiers).length} tiers`,
      );
      return 0;
    }
    case "load-campaign": {
      const campaign = readCampaignFile(positionals[0] ?? SEED_CAMPAIGN_PATH);
      await migrate(env.DATABASE_URL, env.QUANTA_PARTITIONS);
      await loadCampaign(env.DATABASE_URL, campaign, env.QUANTA_PARTITIONS);
      console.log(`loaded campaign ${campaign.id}`);
      return 0;
    }
    case "verify": {
      if (!values.campaign) throw new UsageError("verify needs --campaign ID");
      // The files are read before the database: a wrong file is the operator's to fix, not a broken invariant.
      const listed = values.acknowledged === undefined ? undefined : entries(readAcknowledgedFile(values.acknowledged));
      if (listed?.length === 0)
        throw new UsageError(`${values.acknowledged} lists no acknowledged txns: nothing to check I3 against`);
      const answers = values.answers === undefined ? undefined : entries(readAnswersFile(values.answers));
      if (answers !== undefined && !answers.some(isAcknowledged)) {
        throw new UsageError(
          `${values.answers} holds no 200 or 202 answers (${answers.length} lines): nothing to check I3 and I4 against`,
        );
      }
      const db = connect({
        connectionString: env.DATABASE_URL,
        poolMax: 2,
        statementTimeoutMs: 300_000,
        applicationName: "quanta-verify",
      });
      try {
        const checks = await verifyDatabaseInvariants(db.kysely, values.campaign);
        if (listed !== undefined || answers !== undefined) {
          checks.push(
            await checkAcknowledged(db.kysely, [...(listed ?? []), ...(answers ?? []).filter(isAcknowledged)]),
          );
        }
        if (answers !== undefined) checks.push(await checkAnswers(db.kysely, answers));
        console.log(
          table(
            ["", "holds", "evidence"],
            checks.map((c) => [c.id, c.ok ? "yes" : "NO", c.detail]),
          ),
        );
        const unchecked = [
          ...(listed === undefined && answers === undefined ? ["I3"] : []),
          ...(answers === undefined ? ["I4"] : []),
        ];
        if (unchecked.length > 0)
          console.log(
            `not checked: ${unchecked.join(", ")} (they compare what acquirers were answered with the stored decisions: --answers FILE)`,
          );
        return checks.every((c) => c.ok) ? 0 : 1;
      } finally {
        await db.close();
      }
    }
    case "settle": {
      if (!values.campaign) throw new UsageError("settle needs --campaign ID");
      if (values.close && values.day === undefined)
        throw new UsageError("settle --close needs --day YYYY-MM-DD: the day to settle");
      if (values.day !== undefined && !isSettlementDay(values.day))
        throw new UsageError(`--day must be a day as YYYY-MM-DD, got ${values.day}`);
      const db = connect({
        connectionString: env.DATABASE_URL,
        poolMax: 2,
        statementTimeoutMs: 300_000,
        applicationName: "quanta-settle",
      });
      try {
        let s;
        if (values.day === undefined) s = await settlement(db.kysely, values.campaign);
        else if (!values.close) s = await settlementDay(db.kysely, values.campaign, values.day);
        else {
          const closed = await closeSettlementDay(db.kysely, values.campaign, values.day);
          if (closed.kind === "not_over") {
            console.error(`${values.day} is not over until ${closed.endsAt}: nothing was settled`);
            return 1;
          }
          if (closed.kind === "already_settled")
            console.log(`${values.day} was settled before; its report as it was settled:\n`);
          s = closed.report;
        }
        const files = writeSettlement(s, values.out ?? "settlement");
        console.log("day" in s ? settlementDayText(s) : settlementText(s));
        console.log(`\nwritten: ${files.csv}\n         ${files.json}`);
        return 0;
      } finally {
        await db.close();
      }
    }
    case "rush": {
      const workers = positiveInt(values.workers, "--workers") ?? 2;
      const result = await rush({
        databaseUrl: env.DATABASE_URL,
        redisUrl: env.REDIS_URL,
        scenarioPath: values.scenario,
        workers,
        ingresses: positiveInt(values.ingresses, "--ingresses") ?? 1,
        redisCluster: values["redis-cluster"] ?? false,
        // A worker without a partition decides nothing: by default as many partitions as workers.
        partitions: positiveInt(values.partitions, "--partitions") ?? Math.max(env.QUANTA_PARTITIONS, workers),
        peakRatePerS: positiveInt(values.rate, "--rate"),
        durationS: positiveInt(values.duration, "--duration"),
        payers: positiveInt(values.payers, "--payers"),
        seed: positiveInt(values.seed, "--seed") ?? 20200913,
        drainTimeoutS: 120,
        getChecksMax: 5_000,
        keepDatabase: values["keep-db"] ?? false,
        refundShare: share(values["refund-share"]) ?? 0.05,
        out: (line) => console.log(line),
      });
      console.log("");
      console.log(result.text);
      const files = writeRushResult(result);
      console.log(`\nfull result: ${files.json}\nreport with charts (open in a browser): ${files.html}`);
      return result.ok ? 0 : 1;
    }
    case "pg-capacity": {
      const list = (v: string | undefined, fallback: number[], name: string) =>
        v ? v.split(",").map((x) => positiveInt(x, name)!) : fallback;
      const roundSizes = list(values.rounds, [100, 200, 500], "--rounds");
      const concurrencies = list(values.partitions, [1, 2, 4], "--partitions");
      const seconds = positiveInt(values.seconds, "--seconds") ?? 10;
      console.log(
        `quanta pg-capacity: rounds of ${roundSizes.join(", ")} decisions, ${concurrencies.join(", ")} partitions at once, ${seconds} s each, against ${new URL(env.DATABASE_URL).host}`,
      );
      const rows = await pgCapacity({
        databaseUrl: env.DATABASE_URL,
        roundSizes,
        concurrencies,
        seconds,
        out: (line) => console.log(line),
      });
      console.log(`\n${pgCapacityText(rows)}`);
      const file = writePgCapacity(rows, { roundSizes, concurrencies, seconds });
      console.log(`\nwritten: ${file}`);
      return 0;
    }
    case "bench": {
      const rates = values.rates ? values.rates.split(",").map((r) => positiveInt(r, "--rates")!) : [...DEFAULT_RATES];
      const systems = (values.systems ?? (values["redis-cluster"] ? "quanta,quanta-cluster" : SYSTEMS.join(","))).split(
        ",",
      ) as SystemName[];
      for (const s of systems)
        if (!ALL_SYSTEMS.includes(s))
          throw new UsageError(`unknown system ${s}; choose from ${ALL_SYSTEMS.join(", ")}`);
      const settings = {
        databaseUrl: env.DATABASE_URL,
        redisUrl: env.REDIS_URL,
        rates,
        reps: positiveInt(values.reps, "--reps") ?? 3,
        stepS: positiveInt(values.step, "--step") ?? 10,
        partitions: env.QUANTA_PARTITIONS,
        systems,
        out: (line: string) => console.log(line),
      };
      const steps = settings.rates.length * settings.reps * systems.length;
      console.log(
        `quanta bench: ${systems.join(", ")}; rates ${rates.join(", ")}/s; ${settings.reps} reps of ${settings.stepS} s steps (at most ${steps} steps)`,
      );
      const results = await bench(settings);
      const machine = `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
      const summary = summarize(results, systems, machine);
      console.log(`\n${terminalTable(results)}\n\n${summary.markdown}`);
      const files = writeBenchResults(results, summary, chartSvg(results, systems), {
        ...settings,
        out: undefined,
        machine,
      });
      console.log(`\nresults: ${files.json}\n         ${files.markdown}\n         ${files.svg}`);
      return results.some((r) => r.invariantsOk === false) ? 1 : 0;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

class UsageError extends Error {}

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive integer, got ${value}`);
  return n;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) console.error(`${error.message}\n\n${USAGE}`);
    else if (error instanceof CampaignFileError || error instanceof CampaignExistsError) console.error(error.message);
    else console.error(error);
    process.exit(2);
  },
);

function entries<T>(read: FileRead<T>): T[] {
  if (!read.ok) throw new UsageError(read.problem);
  return read.entries;
}

function share(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new UsageError(`--refund-share must be a number from 0 to 1, got ${value}`);
  return n;
}
