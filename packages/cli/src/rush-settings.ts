/**
 * What `quanta rush` is told: where its database and Redis are, the load's shape (the scenario
 * file, or overrides of its peak rate, duration and payers), the deployment (ingresses, workers,
 * partitions, a private Redis Cluster) and what to check and keep afterwards.
 */
export interface RushSettings {
  databaseUrl: string;
  redisUrl: string;
  scenarioPath?: string;
  campaignPath?: string;
  workers: number;
  /** Ingress processes; the driver spreads callbacks over them round robin (default 1). */
  ingresses?: number;
  /** Run on a private Redis Cluster (3 masters, one replica each, AOF always) instead of redisUrl. */
  redisCluster?: boolean;
  partitions: number;
  peakRatePerS?: number;
  durationS?: number;
  payers?: number;
  seed: number;
  drainTimeoutS: number;
  getChecksMax: number;
  keepDatabase: boolean;
  /** Database created (and by default dropped) for the run, on DATABASE_URL's server. */
  databaseName?: string;
  /** Redis prefix of the run (removed afterwards). */
  prefix?: string;
  /** In-flight callbacks the driver allows before it drops arrivals. */
  maxInFlight?: number;
  /** Share of granted payments refunded after the rush (0: no refund phase). */
  refundShare?: number;
  out: (line: string) => void;
}
