import type { LatencySummary } from './latency-window.js';

/** Counters of one cache name (a decorated method, `CacheService`) or one HTTP route. */
export interface CacheNameStats {
  /** Calls served from the cache. */
  hits: number;
  /** Calls that ran the source because the value was not cached. */
  misses: number;
  /** Calls served a stale value while it was refreshed. */
  stale: number;
  /** Calls that skipped the cache (`condition` false). */
  bypasses: number;
  /** Calls recorded as `error`: the cache failed and the source answered. */
  failedCalls: number;
  /** Failed cache operations (Redis down or slow, undecodable payload, unencodable value). */
  errors: number;
  /** (hits + stale) / (hits + stale + misses + failed reads); 0 before any call. */
  hitRate: number;
  latency: LatencySummary;
}

/**
 * A snapshot of the cache's counters since the application started.
 *
 * @example
 * const { hitRate, byName } = cacheService.stats();
 * console.log(hitRate, byName['UsersService.findOne'].latency.p99Ms);
 */
export interface CacheStats {
  hits: number;
  misses: number;
  stale: number;
  bypasses: number;
  failedCalls: number;
  errors: number;
  hitRate: number;
  /** Per cache name: `ClassName.methodName` unless the decorator's `name` says otherwise. */
  byName: Record<string, CacheNameStats>;
  /** Per HTTP route (`GET /users/:id`), recorded by `CacheMetricsInterceptor`. */
  byRoute: Record<string, CacheNameStats>;
}
