import { cpus, totalmem } from "node:os";
import { rush, writeRushResult } from "./rush.js";
import { pgCapacity, pgCapacityText, writePgCapacity } from "./pg-capacity.js";
import { ALL_SYSTEMS, DEFAULT_RATES, SYSTEMS, bench, type SystemName } from "./bench.js";
import { summarize, terminalTable, writeBenchResults } from "./bench-report.js";
import { chartSvg } from "./bench-chart.js";
import { UsageError, positiveInt, positiveInts, share, type CliValues, type CommandInput } from "./cli-args.js";

/**
 * The commands that run load on a private database of their own and write what they measured:
 * rush (the opening minute replayed), pg-capacity (Postgres alone) and bench (the ladders).
 * Exit 1 when the run broke an invariant (rush: any check failed).
 */
export async function rushCommand({ values, env }: CommandInput): Promise<number> {
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

export async function pgCapacityCommand({ values, env }: CommandInput): Promise<number> {
  const roundSizes = positiveInts(values.rounds, [100, 200, 500], "--rounds");
  const concurrencies = positiveInts(values.partitions, [1, 2, 4], "--partitions");
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

export async function benchCommand({ values, env }: CommandInput): Promise<number> {
  const rates = positiveInts(values.rates, DEFAULT_RATES, "--rates");
  const systems = benchSystems(values);
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

/** --systems, else --redis-cluster's pair, else the default three; a name bench does not know is refused. */
function benchSystems(values: CliValues): SystemName[] {
  const systems = (values.systems ?? (values["redis-cluster"] ? "quanta,quanta-cluster" : SYSTEMS.join(","))).split(
    ",",
  ) as SystemName[];
  for (const s of systems)
    if (!ALL_SYSTEMS.includes(s)) throw new UsageError(`unknown system ${s}; choose from ${ALL_SYSTEMS.join(", ")}`);
  return systems;
}
