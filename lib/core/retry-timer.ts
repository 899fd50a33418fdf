/**
 * Runs `retry` once, `everyMs` after it was scheduled, while something is left to retry. What an
 * outage held back is replayed on recovery, but an error reply (READONLY, OOM) is no outage and
 * brings no recovery: this timer is what retries then.
 */
export class RetryTimer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly retry: () => void,
    private readonly everyMs: number,
  ) {}

  /** Schedules a retry unless one is scheduled, or the timer stopped. */
  schedule(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.retry();
    }, this.everyMs);
    this.timer.unref();
  }

  /** No more retries (the application is closing). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
