// nestjs-redis-cache/prometheus: the cache's events as Prometheus series. The only place prom-client
// is imported, so the package's root entry works without it.
export { collectCacheMetrics, type CacheMetricsCollector } from './collect-cache-metrics.js';
export { OTHER_LABEL_VALUE } from './label-bound.js';
export {
  DEFAULT_DURATION_BUCKETS,
  DEFAULT_MAX_LABEL_VALUES,
  DEFAULT_PREFIX,
  type CollectCacheMetricsOptions,
} from './prometheus-options.js';
export { RedisCachePrometheusModule, type RedisCachePrometheusOptions } from './redis-cache-prometheus.module.js';
