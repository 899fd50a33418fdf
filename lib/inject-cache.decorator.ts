import { Inject } from '@nestjs/common';
import { CacheService } from './cache.service.js';
import { cacheNameOf, cacheTokens, DEFAULT_CACHE } from './cache-names.js';

/**
 * The DI token of a cache's `CacheService`: `CacheService` itself for the default cache, a string
 * for a named one (`RedisCacheModule.forRoot({ name })`). For `moduleRef.get(...)` in tests.
 */
export function getCacheToken(name?: string): string | typeof CacheService {
  const cache = cacheNameOf(name, 'getCacheToken');
  return cache === DEFAULT_CACHE ? CacheService : cacheTokens(cache).service;
}

/**
 * Injects the `CacheService` of the cache registered as `name` (the default cache without one).
 *
 * @example
 * constructor(@InjectCache('sessions') private readonly sessions: CacheService) {}
 */
export function InjectCache(name?: string): PropertyDecorator & ParameterDecorator {
  return Inject(getCacheToken(name));
}
