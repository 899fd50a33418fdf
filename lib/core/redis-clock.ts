/**
 * How far an epoch in a message may be ahead of Redis's clock as this process estimates it: clocks
 * of Cluster nodes drift apart by milliseconds, an estimate by less than a second between readings.
 */
const FUTURE_SLACK_US = 5 * 60 * 1_000_000;
/**
 * The same before any reading of Redis's clock, measured against this machine's clock instead
 * (a message can arrive before the first reply that carries Redis's time): wider, for two machines'
 * clocks, still far below what a hostile epoch (`1e300`) would need.
 */
const UNREAD_SLACK_US = 60 * 60 * 1_000_000;

/**
 * What this process knows of Redis's clock (microseconds, the clock epochs are taken on), to tell
 * a plausible epoch in a message from a hostile or corrupt one: an epoch of `1e300` would mark a
 * prefix or tag invalid forever. Set from readings of Redis `TIME`, moved on by the local monotonic
 * clock in between.
 */
export class RedisClock {
  private readingUs: number | undefined;
  private readAtMs = 0;

  /** A reading of Redis's clock, in microseconds, taken about now. */
  observe(redisMicros: number): void {
    if (!Number.isFinite(redisMicros) || redisMicros <= 0) return;
    const now = performance.now();
    if (this.readingUs === undefined || redisMicros > this.estimate(now)) {
      this.readingUs = redisMicros;
      this.readAtMs = now;
    }
  }

  /**
   * True when `epoch` could have been taken on Redis's clock by now: a positive integer no more than
   * a few minutes ahead of the estimate (an hour ahead of this machine's clock, before any reading).
   */
  plausible(epoch: number): boolean {
    if (!Number.isSafeInteger(epoch) || epoch <= 0) return false;
    if (this.readingUs === undefined) return epoch <= Date.now() * 1_000 + UNREAD_SLACK_US;
    return epoch <= this.estimate(performance.now()) + FUTURE_SLACK_US;
  }

  /** Redis's clock now as this process estimates it (µs); undefined before any reading. */
  now(): number | undefined {
    return this.readingUs === undefined ? undefined : this.estimate(performance.now());
  }

  private estimate(nowMs: number): number {
    return (this.readingUs ?? 0) + (nowMs - this.readAtMs) * 1_000;
  }
}
