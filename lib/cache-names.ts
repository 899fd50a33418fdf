import { RedisCacheConfigError } from './errors.js';

/** The name of the cache registered without one (`RedisCacheModule.forRoot()`). */
export const DEFAULT_CACHE = 'default';

/** What a cache name may contain: it appears in DI tokens, errors and logs. */
const CACHE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** A registration's or a decorator's `name`/`cache`, checked; `undefined` is the default cache. */
export function cacheNameOf(name: unknown, where: string): string {
  if (name === undefined || name === DEFAULT_CACHE) return DEFAULT_CACHE;
  if (typeof name !== 'string' || !CACHE_NAME.test(name)) {
    throw new RedisCacheConfigError(
      `${where}: the cache name ${JSON.stringify(name)} is not a name: use 1 to 64 of A-Z a-z 0-9 _ . -`,
    );
  }
  return name;
}

/** How a cache appears in messages: the default one as `RedisCacheModule.forRoot()`. */
export function registrationOf(name: string): string {
  return name === DEFAULT_CACHE ? 'RedisCacheModule.forRoot()' : `RedisCacheModule.forRoot({ name: '${name}' })`;
}

/**
 * The DI tokens of one registration. The public ones (options, service, metrics) are strings: Nest
 * names them in its own errors, and `getCacheToken` hands them to users. The internal ones are
 * `Symbol.for` symbols: no string a user writes can collide with them. Both kinds are the same in the
 * two copies of the package (ESM and CommonJS). The default cache's `CacheService` and `CacheMetrics`
 * are also provided under their classes, so a plain constructor parameter `cache: CacheService`
 * injects it.
 */
export function cacheTokens(name: string) {
  return {
    options: name === DEFAULT_CACHE ? 'REDIS_CACHE_MODULE_OPTIONS' : `REDIS_CACHE_MODULE_OPTIONS:${name}`,
    service: `nestjs-redis-cache:CacheService:${name}`,
    metrics: `nestjs-redis-cache:CacheMetrics:${name}`,
    engine: Symbol.for(`nestjs-redis-cache:engine:${name}`),
    executor: Symbol.for(`nestjs-redis-cache:executor-token:${name}`),
    lifecycle: Symbol.for(`nestjs-redis-cache:lifecycle:${name}`),
  };
}

/**
 * The property of a decorated instance that receives the executor of cache `name` (see
 * cache-method-wrapper.ts). `Symbol.for`: the same key in both copies of the package.
 */
export function executorProperty(name: string): symbol {
  return Symbol.for(`nestjs-redis-cache:executor:${name}`);
}
