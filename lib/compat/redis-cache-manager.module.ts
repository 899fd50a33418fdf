import { Module, type DynamicModule } from '@nestjs/common';
import type { CacheService } from '../cache.service.js';
import { getCacheToken } from '../inject-cache.decorator.js';
import { CACHE_MANAGER, CacheManagerAdapter } from './cache-manager-adapter.js';

/** Options of `RedisCacheManagerModule.register`. */
export interface RedisCacheManagerOptions {
  /** The cache the adapter uses (a `RedisCacheModule.forRoot({ name })`); default the default cache. */
  cache?: string;
  /** Provide `CACHE_MANAGER` to every module. Default `true`. */
  isGlobal?: boolean;
}

/**
 * Provides `CACHE_MANAGER` (a `CacheManagerAdapter`: get/set with millisecond TTLs, del, mdel, clear,
 * wrap) on this module's cache, for services written against `@nestjs/cache-manager` while an app
 * moves over. Import it beside `RedisCacheModule.forRoot()`, in place of `CacheModule.register()`.
 *
 * @example
 * imports: [RedisCacheModule.forRoot(), RedisCacheManagerModule.register()]
 * // unchanged: constructor(@Inject(CACHE_MANAGER) private readonly cacheManager: Cache) {}
 */
@Module({})
export class RedisCacheManagerModule {
  static register({ cache, isGlobal = true }: RedisCacheManagerOptions = {}): DynamicModule {
    return {
      module: RedisCacheManagerModule,
      global: isGlobal,
      providers: [
        {
          provide: CACHE_MANAGER,
          useFactory: (service: CacheService) => new CacheManagerAdapter(service),
          inject: [getCacheToken(cache)],
        },
      ],
      exports: [CACHE_MANAGER],
    };
  }
}
