/**
 * The clock of RedisCacheTestingModule's in-process store, standing in for Redis `TIME` and key
 * expiry. It reads this process's clock, moved on by every `advance(ms)`, so TTLs, stale windows,
 * lease deadlines and tombstones pass without sleeping.
 *
 * Invalidation epochs and horizons (microseconds) are not moved by `advance`: they only order events
 * (a load against an invalidation, a write against another), for which the process's clock made
 * strictly increasing is enough; and the engine checks an epoch in a message against its estimate of
 * the store's clock, which jumps of hours would fail.
 */
export class TestClock {
  private offsetMs = 0;
  private lastMicros = 0;

  /** Milliseconds since the epoch: `Date.now()` plus everything `advance` added. */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** How far `advance` has moved the clock ahead of `Date.now()`, in ms. */
  get advancedMs(): number {
    return this.offsetMs;
  }

  /** Moves the clock `ms` ahead. */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance takes a finite number of ms >= 0, got ${ms}`);
    this.offsetMs += ms;
  }

  /** Microseconds for an epoch or a horizon: the process's clock, strictly increasing, not moved by `advance`. */
  micros(): number {
    this.lastMicros = Math.max(this.lastMicros + 1, Date.now() * 1_000);
    return this.lastMicros;
  }
}
