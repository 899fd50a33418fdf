/**
 * How one cache stands right now (`CacheService.status()`): for readiness probes, dashboards and
 * tests that must wait for the cache to be coherent rather than sleep.
 */
export interface CacheStatus {
  /** True from `app.init()` until `app.close()`; while false every call goes to the source. */
  readonly running: boolean;
  /**
   * The cache's own view of Redis: `'down'` during an outage (calls go to the source, each failure
   * counted, the outage logged once), `'up'` otherwise. `'down'` while not running.
   */
  readonly redis: 'up' | 'down';
  /**
   * True while this instance's subscription is live: lease releases wake its waiters, and other
   * instances' invalidations reach its in-process tier. While false, waiters poll and L1 serves nothing.
   */
  readonly subscribed: boolean;
  /**
   * The in-process tier: `'off'` when no method uses `l1`, `'serving'` once it is coherent with the
   * other instances (subscribed, and every writer announces its changes), `'waiting'` until then.
   */
  readonly l1: 'off' | 'waiting' | 'serving';
  /** Invalidations an outage held back: replayed (keys deleted, tags and prefixes invalidated) once Redis answers. */
  readonly pendingInvalidations: number;
}
