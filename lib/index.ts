// Public API of nestjs-redis-cache: everything a user imports comes from here.
export { RedisCacheModule } from './redis-cache.module.js';
export {
  REDIS_CACHE_MODULE_OPTIONS,
  type RedisCacheOptionsFactory,
  type RedisCacheModuleAsyncOptions,
} from './redis-cache.module-definition.js';
export { CacheService, type CacheSetOptions, type CacheGetOrSetOptions } from './cache.service.js';
export type { CacheStatus } from './core/cache-status.js';
export { InjectCache, getCacheToken } from './inject-cache.decorator.js';
export { Cacheable } from './decorators/cacheable.decorator.js';
export { CachePut } from './decorators/cache-put.decorator.js';
export { CacheEvict } from './decorators/cache-evict.decorator.js';
export type { CacheMethodDecorator, CacheableMethod } from './decorators/cache-method-wrapper.js';
export { CacheMetricsInterceptor, type XCacheHeader } from './metrics/cache-metrics.interceptor.js';
export { CacheMetrics } from './metrics/cache-metrics.js';
export type { CacheOutcome } from './metrics/cache-outcome.js';
export {
  CACHE_CHANNELS,
  type CacheChannel,
  type CacheEventSource,
  type CacheTier,
  type CacheCallEvent,
  type CacheLoadStartEvent,
  type CacheLoadEndEvent,
  type CacheLeaseWaitEvent,
  type CacheErrorOperation,
  type CacheErrorEvent,
  type CacheInvalidationEvent,
  type CacheL1DropEvent,
  type CacheConnectionEvent,
  type CacheRouteEvent,
} from './events/cache-events.js';
export type { CacheStats, CacheNameStats, CacheCounts } from './metrics/cache-stats.interface.js';
export type { LatencySummary } from './metrics/latency-window.js';
export type {
  RedisCacheModuleOptions,
  RedisConnectionOption,
  RedisClusterConnection,
  L1Options,
  TtlOption,
  CompressionOptions,
} from './options/redis-cache-options.interface.js';
export type {
  CacheableOptions,
  CachePutOptions,
  CacheEvictOptions,
  CacheKeyOption,
  CacheTagsOption,
  CacheEvictTagsOption,
  KeyFromResult,
  CacheBatchOptions,
} from './options/cache-decorator-options.interface.js';
export type { CacheLoadOptions, CacheRetentionOptions } from './options/cache-load-options.interface.js';
export type { DurationString } from './options/duration.js';
export { RedisCacheError, RedisCacheConfigError, CacheSerializationError, CacheUnavailableError } from './errors.js';
export { HttpCacheInterceptor, CacheInterceptor } from './http/http-cache.interceptor.js';
export {
  CacheKey,
  CacheTTL,
  CachePublic,
  type HttpCacheDecorator,
  type HttpCacheKeyFactory,
  type HttpCacheTtlFactory,
} from './http/http-cache.decorators.js';
export {
  HTTP_CACHE_OPTIONS,
  provideHttpCacheOptions,
  type HttpCacheOptions,
  type HttpCachePrincipal,
  type HttpCacheRequest,
} from './http/http-cache-options.js';
export { HTTP_CACHE_PREFIX } from './http/http-response-key.js';
export { CACHE_MANAGER, CacheManagerAdapter, type CacheManagerItem } from './compat/cache-manager-adapter.js';
export { RedisCacheManagerModule, type RedisCacheManagerOptions } from './compat/redis-cache-manager.module.js';
export {
  RedisCacheTestingModule,
  getCacheTesting,
  getCacheTestingToken,
  type RedisCacheTestingOptions,
} from './testing/redis-cache-testing.module.js';
export { RedisCacheTesting } from './testing/redis-cache-testing.js';
export { auditKeyspace } from './audit/audit-keyspace.js';
export type { KeyspaceAuditOptions, AuditProgress, RedFlagThresholds } from './audit/audit-options.js';
export type {
  KeyspaceAuditReport,
  PrefixReport,
  TtlSpread,
  ServerFigures,
  NodeReport,
  RedFlag,
  RedFlagCode,
} from './audit/audit-report.js';
