// nestjs-redis-cache/opentelemetry: spans and metrics through @opentelemetry/api (an optional peer).
// Only this folder imports @opentelemetry/*: the package root loads nothing of it.
export { instrumentRedisCache, type RedisCacheInstrumentation } from './instrument-redis-cache.js';
export type { RedisCacheInstrumentationOptions } from './instrumentation-options.js';
export { RedisCacheOpenTelemetryModule } from './redis-cache-opentelemetry.module.js';
export {
  REDIS_CACHE_OPENTELEMETRY_OPTIONS,
  type RedisCacheOpenTelemetryAsyncOptions,
} from './redis-cache-opentelemetry.module-definition.js';
export { CACHE_ATTRIBUTES, CACHE_METRICS, OTHER_NAME } from './cache-attributes.js';
export { INSTRUMENTATION_SCOPE } from './instrumentation-scope.js';
