import type { CacheOutcome } from './cache-outcome.js';
import type { CacheNameStats } from './cache-stats.interface.js';
import { LatencyWindow } from './latency-window.js';

/** The counters of one name or route. */
export class CacheCounters {
  hits = 0;
  misses = 0;
  stale = 0;
  bypasses = 0;
  /** Calls whose outcome was `error`; each also counted one failure in `errors`. */
  failedCalls = 0;
  errors = 0;
  refreshes = 0;
  refreshFailures = 0;
  fallbacks = 0;
  /** Hits served from the in-process tier (also in `hits`). */
  l1Hits = 0;
  readonly latency = new LatencyWindow();

  record(outcome: CacheOutcome, latencyMs: number): void {
    switch (outcome) {
      case 'hit':
        this.hits++;
        break;
      case 'miss':
        this.misses++;
        break;
      case 'stale':
        this.stale++;
        break;
      case 'bypass':
        this.bypasses++;
        break;
      case 'error':
        this.failedCalls++;
        break;
    }
    this.latency.record(latencyMs);
  }

  /** Back to zero, in place: callers that hold these counters keep recording into them. */
  reset(): void {
    this.hits = this.misses = this.stale = this.bypasses = this.failedCalls = this.errors = 0;
    this.refreshes = this.refreshFailures = this.fallbacks = this.l1Hits = 0;
    this.latency.reset();
  }

  snapshot(): CacheNameStats {
    return {
      hits: this.hits,
      misses: this.misses,
      stale: this.stale,
      bypasses: this.bypasses,
      failedCalls: this.failedCalls,
      errors: this.errors,
      refreshes: this.refreshes,
      refreshFailures: this.refreshFailures,
      fallbacks: this.fallbacks,
      l1Hits: this.l1Hits,
      hitRate: hitRate(this.hits + this.stale, this.misses + this.failedCalls),
      latency: this.latency.summary(),
    };
  }
}

export function hitRate(served: number, missed: number): number {
  const total = served + missed;
  return total === 0 ? 0 : Math.round((served / total) * 10_000) / 10_000;
}
