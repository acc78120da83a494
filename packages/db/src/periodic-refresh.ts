/**
 * Something read from Postgres and re-read every refreshMs while the
 * process runs. A failed refresh keeps the last good copy and reports the
 * error; the timer never keeps the process alive.
 */
export abstract class PeriodicRefresh {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly onError: (error: unknown) => void,
    private readonly refreshMs: number,
  ) {}

  /** Reads once (errors reach the caller: a service should not start blind), then every refreshMs. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch(this.onError);
    }, this.refreshMs);
    this.timer.unref();
  }

  abstract refresh(): Promise<void>;

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
