import { parseEnv } from "@quanta/config";
import { parsePayerKey, payerRef } from "@quanta/contract";
import { SEED_CAMPAIGN_PATH, loadCampaign, migrate, readCampaignFile } from "./setup.js";
import { runK6 } from "./k6.js";
import { DEFAULT_RATES } from "./bench.js";
import { UsageError, type CommandInput } from "./cli-args.js";
import { verifyCommand } from "./cli-verify.js";
import { settleCommand } from "./cli-settle.js";
import { benchCommand, pgCapacityCommand, rushCommand } from "./cli-runs.js";

/**
 * The CLI's commands: each one's name, its lines in the usage text, and its handler, which returns
 * the exit code. The usage text is these lines in this order; operators' scripts read it, so a
 * line changes only with its command.
 */
export type Command = { name: string; usage: readonly string[] } & (
  | { run: (input: CommandInput) => Promise<number> }
  /** Hands its arguments on unread (k6's own options): no option parsing, no --help. */
  | { passThrough: true; run: (args: string[]) => Promise<number> }
);

export const COMMANDS: readonly Command[] = [
  {
    name: "migrate",
    usage: ["  migrate                      create the database if needed and apply migrations"],
    run: migrateCommand,
  },
  {
    name: "load-campaign",
    usage: ["  load-campaign [file]         check and load a campaign file (default: the seed campaign)"],
    run: loadCampaignCommand,
  },
  {
    name: "check-campaign",
    usage: ["  check-campaign [file]        check a campaign file without loading it"],
    run: checkCampaignCommand,
  },
  {
    name: "settle",
    usage: [
      "  settle --campaign ID         settlement from the decision records: per merchant per day, and the",
      "      --out DIR                  campaign totals and leftover; writes CSV and JSON to DIR (default settlement/)",
      "      --day YYYY-MM-DD           only that day's report (UTC+8), with its adjustments of settled days",
      "      --close                    with --day: settle the day (once it is over); its report never changes",
      "                                 again, and what comes in for it later is booked on the day it arrives",
    ],
    run: settleCommand,
  },
  {
    name: "rush",
    usage: [
      "  rush [options]               replay the opening minute of 2020-09-13 against a fresh local stack",
      "      --rate N                   peak arrivals per second (scenario default)",
      "      --duration S               seconds of load (scenario default)",
      "      --payers N                 payer population (scenario default)",
      "      --workers N                worker processes (default 2)",
      "      --ingresses N              ingress processes, callbacks round robin over them (default 1)",
      "      --partitions N             partitions (default QUANTA_PARTITIONS, at least --workers)",
      "      --redis-cluster            on a private Redis Cluster (3 masters, 1 replica each, AOF always)",
      "      --scenario FILE            scenario file (default loadtest/scenarios/rush-0913.json)",
      "      --seed N                   PRNG seed (default 20200913)",
      "      --keep-db                  keep the quanta_rush database for inspection",
      "      --refund-share X           after the rush, refund this share of the granted payments, let new",
      "                                 payers claim the returned vouchers, and settle (default 0.05; 0: none)",
    ],
    run: rushCommand,
  },
  {
    name: "verify",
    usage: [
      "  verify --campaign ID         audit a campaign in DATABASE_URL: I1, I2 (by its refund slot policy), I6, the",
      "                               budget and refunds; I3 and I4 need what acquirers were answered:",
      '      --answers FILE             JSON lines {"acquirerId", "txnId", "status", "answer"}, one per answer received:',
      "                                 I3, every txn answered 200/202 decided exactly once; I4, every 200 answer",
      "                                 equal to the stored decision",
      '      --acknowledged FILE        I3 for a list of txns answered 200/202, one "acquirerId/txnId" per line',
    ],
    run: verifyCommand,
  },
  {
    name: "payer-ref",
    usage: [
      "  payer-ref PAYER_ID           the stored form of a payer id (its pseudonym under QUANTA_PAYER_KEY), to look a",
      "                               payer up in attempts.payer_id for support; under a retired key, run it with",
      "                               that key in QUANTA_PAYER_KEY (rows carry their key's id as a prefix)",
    ],
    run: payerRefCommand,
  },
  {
    name: "k6",
    usage: [
      "  k6 SCRIPT [k6 options]       run one script of loadtest/k6 in real k6 ($K6, ../shared/tools/k6 or k6 on the",
      "                               PATH) against a private stack, then check the invariants; exit 0 when every",
      "                               promise (and, unless -e BUDGETS=report, every budget) held",
    ],
    passThrough: true,
    run: k6Command,
  },
  {
    name: "pg-capacity",
    usage: [
      "  pg-capacity [options]        what one Postgres here commits of quanta's decision rounds, nothing else in the way",
      "      --rounds 100,200,500       round sizes (default 100,200,500)",
      "      --partitions 1,2,4         partitions deciding at once, one connection each (default 1,2,4)",
      "      --seconds S                seconds per measurement (default 10)",
    ],
    run: pgCapacityCommand,
  },
  {
    name: "bench",
    usage: [
      "  bench [options]              open-model ladders: quanta vs direct (one txn per callback) vs floor",
      `      --rates 250,500,…          offered rates to climb (default ${DEFAULT_RATES.join(",")})`,
      "      --reps N                   repetitions, systems alternating (default 3)",
      "      --step S                   seconds of load per step (default 10)",
      "      --systems a,b              subset of quanta,direct,floor, or quanta-aof (quanta on Redis with AOF always),",
      "                                 quanta-1w (one worker process instead of two), quanta-cluster (on a private",
      "                                 Redis Cluster: 3 masters, 1 replica each, AOF always)",
      "      --redis-cluster            the same as --systems quanta,quanta-cluster (single Redis beside the cluster)",
    ],
    run: benchCommand,
  },
];

export const USAGE = [
  "quanta <command> [options]",
  "",
  "commands:",
  ...COMMANDS.flatMap((c) => c.usage),
  "",
  "environment: DATABASE_URL, REDIS_URL, QUANTA_PARTITIONS (see README)",
].join("\n");

async function migrateCommand({ env }: CommandInput): Promise<number> {
  const applied = await migrate(env.DATABASE_URL, env.QUANTA_PARTITIONS);
  console.log(applied.length ? `applied: ${applied.join(", ")}` : "schema is up to date");
  return 0;
}

async function loadCampaignCommand({ env, positionals }: CommandInput): Promise<number> {
  const campaign = readCampaignFile(positionals[0] ?? SEED_CAMPAIGN_PATH);
  await migrate(env.DATABASE_URL, env.QUANTA_PARTITIONS);
  await loadCampaign(env.DATABASE_URL, campaign, env.QUANTA_PARTITIONS);
  console.log(`loaded campaign ${campaign.id}`);
  return 0;
}

async function checkCampaignCommand({ positionals }: CommandInput): Promise<number> {
  const campaign = readCampaignFile(positionals[0] ?? SEED_CAMPAIGN_PATH);
  const tiers = campaign.activities.flatMap((a) => a.tiers).length;
  console.log(`campaign ${campaign.id} is valid: ${campaign.activities.length} activities, ${tiers} tiers`);
  return 0;
}

async function payerRefCommand({ env, positionals }: CommandInput): Promise<number> {
  if (!positionals[0]) throw new UsageError("payer-ref needs the payer id: quanta payer-ref <payerId>");
  console.log(payerRef(parsePayerKey(env.QUANTA_PAYER_KEY), positionals[0]));
  return 0;
}

/** Everything after the script goes to k6 as it is (-e NAME=value, --duration, …). */
async function k6Command([script, ...k6Args]: string[]): Promise<number> {
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
