// nestjs-redis-cache/prometheus: the cache's events as Prometheus series. The only place prom-client
// is imported, so the package's root entry works without it.
export { collectCacheMetrics, type CacheMetricsCollector } from './collect-cache-metrics.js';
/** The label value that stands for every value past a dimension's bound. */
export { OTHER_NAME as OTHER_LABEL_VALUE } from '../metrics/bounded-names.js';
export {
  DEFAULT_DURATION_BUCKETS,
  DEFAULT_MAX_LABEL_VALUES,
  DEFAULT_PREFIX,
  type CollectCacheMetricsOptions,
} from './prometheus-options.js';
export { RedisCachePrometheusModule, type RedisCachePrometheusOptions } from './redis-cache-prometheus.module.js';
