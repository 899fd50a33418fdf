import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { collectCacheMetrics, type CacheMetricsCollector } from './collect-cache-metrics.js';
import type { CollectCacheMetricsOptions } from './prometheus-options.js';

export const CACHE_PROMETHEUS_OPTIONS = Symbol('CACHE_PROMETHEUS_OPTIONS');

/** Starts the collector when the module initialises and stops it when the application shuts down. */
@Injectable()
export class CacheMetricsCollectorLifecycle implements OnModuleInit, OnApplicationShutdown {
  private collector: CacheMetricsCollector | undefined;

  constructor(@Inject(CACHE_PROMETHEUS_OPTIONS) private readonly options: CollectCacheMetricsOptions) {}

  onModuleInit(): void {
    this.collector ??= collectCacheMetrics(this.options);
  }

  onApplicationShutdown(): void {
    this.collector?.stop();
    this.collector = undefined;
  }
}
