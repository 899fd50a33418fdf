import type { Registry } from 'prom-client';

/** Options of `collectCacheMetrics` (and of `RedisCachePrometheusModule.forRoot`). */
export interface CollectCacheMetricsOptions {
  /** The registry the series are registered on. Default: prom-client's global `register`. */
  registry?: Registry;
  /** Prepended to every series name. Default `'nestjs_redis_cache_'`. */
  prefix?: string;
  /**
   * Histogram buckets in seconds, for every duration series. Default: 0.5 ms to 10 s
   * (`DEFAULT_DURATION_BUCKETS`), since a Redis hit takes well under a millisecond and a load as long
   * as the method does.
   */
  buckets?: number[];
  /**
   * How many distinct values each of the `cache`, `name` and `route` labels may take; later ones are
   * counted under `(other)`. Default 200.
   */
  maxLabelValues?: number;
}

export const DEFAULT_PREFIX = 'nestjs_redis_cache_';

export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

export const DEFAULT_MAX_LABEL_VALUES = 200;
