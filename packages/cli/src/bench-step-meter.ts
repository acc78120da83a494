import { postgresCpuS, processCpuS, type Probes, type ServerCounters } from "./bench-probes.js";
import type { ServiceProcess } from "./stack.js";

/**
 * A step's counters, read when the measured seconds start and again after the last decision:
 * CPU of the system's processes, of Postgres and of this process (the load generator), the
 * servers' counters (Redis CPU and commands, Postgres commits, WAL), and Redis memory's peak,
 * sampled in between. The differences, per attempt, are what a step reports.
 */
export interface CpuReading {
  services: number;
  postgres: number;
  driver: NodeJS.CpuUsage;
  perProcess: number[];
}

export interface MeterReadings {
  cpuBefore: CpuReading;
  /** driver: this process's CPU since cpuBefore. */
  cpuAfter: CpuReading;
  before: ServerCounters;
  after: ServerCounters;
  redisPeakBytes: number;
}

const REDIS_SAMPLE_MS = 250;
/** Postgres publishes commit counts about once a second. */
const COUNTERS_SETTLE_MS = 1_200;

export class StepMeter {
  private peakBytes: number;
  private readonly sampler: NodeJS.Timeout;

  private constructor(
    private readonly probes: Probes,
    private readonly dbName: string,
    private readonly services: readonly ServiceProcess[],
    private readonly cpuBefore: CpuReading,
    private readonly before: ServerCounters,
  ) {
    this.peakBytes = before.redisUsedBytes;
    this.sampler = setInterval(() => {
      probes.redisUsedBytes().then(
        (b) => (this.peakBytes = Math.max(this.peakBytes, b)),
        () => undefined,
      );
    }, REDIS_SAMPLE_MS);
  }

  static async start(probes: Probes, dbName: string, services: readonly ServiceProcess[]): Promise<StepMeter> {
    const cpuBefore = {
      services: servicesCpuS(services),
      postgres: postgresCpuS(),
      driver: process.cpuUsage(),
      perProcess: perProcessCpuS(services),
    };
    return new StepMeter(probes, dbName, services, cpuBefore, await probes.read(dbName));
  }

  stopSampling(): void {
    clearInterval(this.sampler);
  }

  async finish(): Promise<MeterReadings> {
    const cpuAfter = {
      services: servicesCpuS(this.services),
      postgres: postgresCpuS(),
      driver: process.cpuUsage(this.cpuBefore.driver),
      perProcess: perProcessCpuS(this.services),
    };
    await new Promise((r) => setTimeout(r, COUNTERS_SETTLE_MS));
    const after = await this.probes.read(this.dbName);
    return { cpuBefore: this.cpuBefore, cpuAfter, before: this.before, after, redisPeakBytes: this.peakBytes };
  }
}

const servicesCpuS = (services: readonly ServiceProcess[]) =>
  services.reduce((sum, x) => sum + processCpuS(x.child.pid), 0);
const perProcessCpuS = (services: readonly ServiceProcess[]) => services.map((x) => processCpuS(x.child.pid));
