import { Logger, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { CacheService } from './cache.service.js';
import { CacheEngine } from './core/cache-engine.js';
import { CacheOperationExecutor } from './core/cache-operation-executor.js';
import { CacheMetrics } from './metrics/cache-metrics.js';
import { CacheMetricsInterceptor } from './metrics/cache-metrics.interceptor.js';
import { ConfigurableRedisCacheModule } from './redis-cache.module-definition.js';
import { RedisCacheLifecycle } from './redis-cache.lifecycle.js';
import { createDefaultCodec } from './serialization/cache-codec.js';

/**
 * Redis caching for a Nest application: `@Cacheable`, `@CachePut`, `@CacheEvict`, `CacheService`
 * and `CacheMetricsInterceptor`. Register it once, in the root module.
 *
 * @example
 * @Module({
 *   imports: [
 *     RedisCacheModule.forRoot({ redis: process.env.REDIS_URL, ttl: '1h', ttlProfiles: { user_profile: '24h' } }),
 *   ],
 * })
 * export class AppModule {}
 *
 * // or, from configuration:
 * RedisCacheModule.forRootAsync({
 *   imports: [ConfigModule],
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ redis: config.get('REDIS_URL') }),
 * })
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: CacheMetrics,
      useFactory: () => {
        const logger = new Logger('RedisCache');
        return new CacheMetrics((message) => logger.warn(message));
      },
    },
    {
      provide: CacheEngine,
      useFactory: (metrics: CacheMetrics) => {
        const logger = new Logger('RedisCache');
        return new CacheEngine(metrics, createDefaultCodec(), (message) => logger.warn(message));
      },
      inject: [CacheMetrics],
    },
    {
      provide: CacheOperationExecutor,
      useFactory: (engine: CacheEngine) => new CacheOperationExecutor(engine),
      inject: [CacheEngine],
    },
    CacheService,
    CacheMetricsInterceptor,
    RedisCacheLifecycle,
  ],
  exports: [CacheService, CacheOperationExecutor, CacheMetrics, CacheMetricsInterceptor],
})
export class RedisCacheModule extends ConfigurableRedisCacheModule {}
