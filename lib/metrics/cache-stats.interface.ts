import type { LatencySummary } from './latency-window.js';

/** The outcome and error counters, overall, per cache name or per route. */
export interface CacheCounts {
  /** Calls served from the cache. */
  hits: number;
  /** Calls that ran the source because the value was not cached. */
  misses: number;
  /** Calls served a stale value while it was refreshed. */
  stale: number;
  /** Calls that did not read the cache (`condition` false, or only `@CachePut`/`@CacheEvict`). */
  bypasses: number;
  /** Calls recorded as `error`: the cache failed and the source answered. */
  failedCalls: number;
  /** Failed cache operations (Redis down or slow, undecodable payload, unencodable value). */
  errors: number;
  /** Background refreshes run by this process (`staleWhileRevalidate`, `earlyRefresh`, a load past `timeout`). */
  refreshes: number;
  /** Background refreshes whose method threw; the old value stayed. */
  refreshFailures: number;
  /** Calls served a value within `grace` because the method threw or exceeded `timeout` (also counted in `stale`). */
  fallbacks: number;
  /** Hits served from the in-process tier (`l1`) without asking Redis; also counted in `hits`. */
  l1Hits: number;
  /** (hits + stale) / (hits + stale + misses + failedCalls); 0 before any call. */
  hitRate: number;
}

/** Counters of one cache name (a decorated method, `CacheService`) or one HTTP route. */
export interface CacheNameStats extends CacheCounts {
  latency: LatencySummary;
}

/**
 * A snapshot of the cache's counters since the application started.
 *
 * @example
 * const { hitRate, byName } = cacheService.stats();
 * console.log(hitRate, byName['UsersService.findOne'].latency.p99Ms);
 */
export interface CacheStats extends CacheCounts {
  /**
   * Messages on the cache's channels that no instance sends (malformed, outside the namespace, an
   * epoch Redis's clock cannot have reached): dropped, never acted on. Above 0 means something else
   * publishes there.
   */
  rejectedMessages: number;
  /** Per cache name: `ClassName.methodName` unless the decorator's `name` says otherwise. */
  byName: Record<string, CacheNameStats>;
  /** Per HTTP route (`GET /users/:id`), recorded by `CacheMetricsInterceptor`. */
  byRoute: Record<string, CacheNameStats>;
}
