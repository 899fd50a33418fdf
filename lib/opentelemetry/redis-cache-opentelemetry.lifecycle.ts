import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { instrumentRedisCache, type RedisCacheInstrumentation } from './instrument-redis-cache.js';
import type { RedisCacheInstrumentationOptions } from './instrumentation-options.js';
import { REDIS_CACHE_OPENTELEMETRY_OPTIONS } from './redis-cache-opentelemetry.module-definition.js';

/**
 * Instruments the cache while the application runs. It stops at application shutdown rather than
 * module destroy, so what the cache publishes while it closes is still recorded.
 */
@Injectable()
export class RedisCacheOpenTelemetryLifecycle implements OnModuleInit, OnApplicationShutdown {
  private instrumentation: RedisCacheInstrumentation | undefined;

  constructor(
    @Inject(REDIS_CACHE_OPENTELEMETRY_OPTIONS) private readonly options: RedisCacheInstrumentationOptions | undefined,
  ) {}

  onModuleInit(): void {
    this.instrumentation ??= instrumentRedisCache(this.options ?? {});
  }

  onApplicationShutdown(): void {
    this.instrumentation?.disable();
    this.instrumentation = undefined;
  }
}
