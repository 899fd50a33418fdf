import type { DurationString } from './duration.js';

/**
 * How a read-through (`@Cacheable`, `CacheService.getOrSet`) behaves when its key is cold, expiring
 * or being written: the same names in the decorator and the service.
 *
 * @example
 * @Cacheable({ key: 'trending', ttl: '5m', staleWhileRevalidate: '1m', grace: '1h', timeout: 200 })
 * async trending(): Promise<Post[]> { ... }
 */
export interface CacheLoadOptions {
  /**
   * Cross-process stampede protection: on a miss, one caller across every process takes the key's
   * lease (`SET NX PX` with a unique token) and runs the method; the others wait for its value.
   * Default: the module's `lock` (`true`). With `false` nobody waits, but only a lease holder writes.
   */
  lock?: boolean;
  /**
   * How long a lease lasts: seconds or a duration. A holder that dies delays the others at most this
   * long. Make it longer than the method's slowest run. Default: the module's `lockTtl` (10 s).
   */
  lockTtl?: number | DurationString;
  /**
   * How long a caller waits for another process's load: milliseconds or a duration. Then it runs the
   * method itself (without writing). Default: the module's `lockWait` (5000 ms).
   */
  lockWait?: number | DurationString;
  /**
   * Probabilistic early refresh (XFetch): `beta` (`true` = 1; larger refreshes earlier). A hit
   * refreshes the value in the background when `now - loadTime * beta * ln(random()) >= expiry`, so a
   * hot key is reloaded before it expires and callers never see the miss. Off by default.
   */
  earlyRefresh?: number | boolean;
  /**
   * Seconds (or a duration) past the TTL during which the old value is returned at once (outcome
   * `stale`) while one caller across all processes refreshes it in the background. Default 0.
   */
  staleWhileRevalidate?: number | DurationString;
  /**
   * Seconds (or a duration) past the TTL during which the old value is returned when the method
   * throws or exceeds `timeout` (outcome `stale`, counted in `fallbacks`). Default 0.
   */
  grace?: number | DurationString;
  /**
   * Milliseconds (or a duration): when a value within `grace` exists and the method has not answered
   * by then, that value is returned; the method keeps running and its result is stored when it
   * comes. No effect without such a value. Default: none.
   */
  timeout?: number | DurationString;
}

/**
 * How long a written value stays in Redis past its TTL for readers that accept stale values
 * (`staleWhileRevalidate`, `grace`): for `@CachePut` and `CacheService.set`, whose values would
 * otherwise be gone at their TTL.
 */
export interface CacheRetentionOptions {
  /** Seconds (or a duration) kept past the TTL, for readers with `staleWhileRevalidate`. Default 0. */
  staleWhileRevalidate?: number | DurationString;
  /** Seconds (or a duration) kept past the TTL, for readers with `grace`. Default 0. */
  grace?: number | DurationString;
}
