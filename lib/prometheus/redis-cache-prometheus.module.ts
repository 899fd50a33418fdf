import { Module, type DynamicModule } from '@nestjs/common';
import { register } from 'prom-client';
import { CACHE_PROMETHEUS_OPTIONS, CacheMetricsCollectorLifecycle } from './cache-metrics-collector.lifecycle.js';
import { cacheMetricsControllerFor } from './cache-metrics.controller.js';
import type { CollectCacheMetricsOptions } from './prometheus-options.js';

/** Options of `RedisCachePrometheusModule.forRoot`. */
export interface RedisCachePrometheusOptions extends CollectCacheMetricsOptions {
  /**
   * Where the registry's text is served (under the app's global prefix, if it sets one), or `false` to
   * serve nothing: for an app that already exposes the registry. Default `'/metrics'`.
   */
  path?: string | false;
}

/**
 * Prometheus series of the cache (see `collectCacheMetrics`), counted from the application's start to
 * its shutdown and served at `/metrics` unless `path` says otherwise. Needs `prom-client` installed.
 *
 * @example
 * import { RedisCachePrometheusModule } from 'nestjs-redis-cache/prometheus';
 *
 * @Module({
 *   imports: [RedisCacheModule.forRoot(), RedisCachePrometheusModule.forRoot()],
 * })
 * export class AppModule {}
 */
@Module({})
export class RedisCachePrometheusModule {
  static forRoot(options: RedisCachePrometheusOptions = {}): DynamicModule {
    const { path = '/metrics', ...collect } = options;
    const registry = collect.registry ?? register;
    return {
      module: RedisCachePrometheusModule,
      providers: [
        { provide: CACHE_PROMETHEUS_OPTIONS, useValue: { ...collect, registry } },
        CacheMetricsCollectorLifecycle,
      ],
      controllers: path === false ? [] : [cacheMetricsControllerFor(path, registry)],
    };
  }
}
