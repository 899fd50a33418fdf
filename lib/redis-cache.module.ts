import { Logger, Module, type DynamicModule, type InjectionToken, type Provider, type Type } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService } from '@nestjs/core';
import { CacheService } from './cache.service.js';
import { cacheNameOf, cacheTokens, DEFAULT_CACHE } from './cache-names.js';
import { CacheEngine } from './core/cache-engine.js';
import { CacheOperationExecutor } from './core/cache-operation-executor.js';
import { RedisCacheConfigError } from './errors.js';
import { CacheMetrics } from './metrics/cache-metrics.js';
import { CacheMetricsInterceptor } from './metrics/cache-metrics.interceptor.js';
import type { RedisCacheModuleOptions } from './options/redis-cache-options.interface.js';
import type { RedisCacheModuleAsyncOptions, RedisCacheOptionsFactory } from './redis-cache.module-definition.js';
import { RedisCacheLifecycle } from './redis-cache.lifecycle.js';
import type { CacheBackend } from './store/cache-backend.js';
import { createDefaultCodec } from './serialization/cache-codec.js';

/**
 * Redis caching for a Nest application: `@Cacheable`, `@CachePut`, `@CacheEvict`, `CacheService`
 * and `CacheMetricsInterceptor`. Register it once, in the root module; register it again with a
 * `name` for another cache (its own Redis, namespace and options).
 *
 * @example
 * @Module({
 *   imports: [
 *     RedisCacheModule.forRoot({ redis: process.env.REDIS_URL, ttl: '1h', ttlProfiles: { user_profile: '24h' } }),
 *     RedisCacheModule.forRoot({ name: 'sessions', redis: process.env.SESSIONS_REDIS_URL, namespace: 'sess' }),
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
@Module({})
export class RedisCacheModule {
  static forRoot(options: RedisCacheModuleOptions = {}): DynamicModule {
    const name = cacheNameOf(options.name, 'RedisCacheModule.forRoot');
    const tokens = cacheTokens(name);
    return registration(name, options.isGlobal ?? true, [], [{ provide: tokens.options, useValue: options }]);
  }

  static forRootAsync(options: RedisCacheModuleAsyncOptions): DynamicModule {
    const name = cacheNameOf(options.name, 'RedisCacheModule.forRootAsync');
    const { options: token } = cacheTokens(name);
    const checked = (found: RedisCacheModuleOptions) => {
      if (found.name !== undefined && cacheNameOf(found.name, 'RedisCacheModule.forRootAsync') !== name) {
        throw new RedisCacheConfigError(
          `RedisCacheModule.forRootAsync: the factory's options name the cache '${found.name}', the registration ` +
            `'${name}': give the name beside the factory (forRootAsync({ name, useFactory }))`,
        );
      }
      return found;
    };
    const providers: Provider[] = [...(options.extraProviders ?? [])];
    if (options.useFactory) {
      const factory = options.useFactory;
      providers.push({
        provide: token,
        useFactory: async (...args: unknown[]) => checked(await factory(...args)),
        inject: options.inject ?? [],
      });
    } else {
      const source = options.useClass ?? options.useExisting;
      if (!source) {
        throw new RedisCacheConfigError('RedisCacheModule.forRootAsync: give useFactory, useClass or useExisting');
      }
      if (options.useClass) providers.push(options.useClass);
      providers.push({
        provide: token,
        useFactory: async (factory: RedisCacheOptionsFactory) => checked(await factory.createRedisCacheOptions()),
        inject: [source],
      });
    }
    return registration(name, options.isGlobal ?? true, options.imports ?? [], providers);
  }
}

/**
 * What RedisCacheTestingModule (lib/testing) changes in a registration. Everything else is the same,
 * so users' services, `@InjectCache(name)` and decorated methods resolve the same tokens.
 */
export interface RegistrationSeam {
  /** The module class of the registration. */
  readonly module: Type;
  /** The token of a `CacheBackend` provider (one of `providers`): the cache runs on it instead of Redis. */
  readonly backend: InjectionToken;
  /** Providers added to the registration. */
  readonly providers: Provider[];
  /** What the registration exports besides its usual tokens. */
  readonly exports: NonNullable<DynamicModule['exports']>;
  /** Builds the executor (default: `new CacheOperationExecutor(engine)`). */
  readonly executor?: (engine: CacheEngine) => CacheOperationExecutor;
}

/**
 * The providers of one cache. Each registration has its own engine, metrics and executor under its
 * name's tokens; the default cache's service and metrics also go by their classes. A named cache
 * exports only its tokens, so two global registrations never provide the same token. `seam`: what
 * the testing module runs differently (no Redis).
 */
export function registration(
  name: string,
  global: boolean,
  imports: NonNullable<DynamicModule['imports']>,
  optionsProviders: Provider[],
  seam?: RegistrationSeam,
): DynamicModule {
  const tokens = cacheTokens(name);
  const isDefault = name === DEFAULT_CACHE;
  const logger = new Logger(isDefault ? 'RedisCache' : `RedisCache:${name}`);
  const providers: Provider[] = [
    ...optionsProviders,
    { provide: tokens.metrics, useFactory: () => new CacheMetrics((message) => logger.warn(message)) },
    {
      provide: tokens.engine,
      useFactory: (metrics: CacheMetrics) =>
        new CacheEngine(metrics, createDefaultCodec(), (message) => logger.warn(message), name),
      inject: [tokens.metrics],
    },
    {
      provide: tokens.executor,
      useFactory: (engine: CacheEngine) => seam?.executor?.(engine) ?? new CacheOperationExecutor(engine),
      inject: [tokens.engine],
    },
    { provide: tokens.service, useFactory: (engine: CacheEngine) => new CacheService(engine), inject: [tokens.engine] },
    {
      provide: tokens.lifecycle,
      useFactory: (
        options: RedisCacheModuleOptions,
        engine: CacheEngine,
        executor: CacheOperationExecutor,
        discovery: DiscoveryService,
        backend?: CacheBackend,
      ) => new RedisCacheLifecycle({ name, global }, options, engine, executor, discovery, logger, backend),
      inject: [tokens.options, tokens.engine, tokens.executor, DiscoveryService, ...(seam ? [seam.backend] : [])],
    },
    ...(seam?.providers ?? []),
  ];
  const exports: NonNullable<DynamicModule['exports']> = [
    tokens.service,
    tokens.executor,
    tokens.metrics,
    ...(seam?.exports ?? []),
  ];
  if (isDefault) {
    providers.push(
      { provide: CacheService, useExisting: tokens.service },
      { provide: CacheMetrics, useExisting: tokens.metrics },
      CacheMetricsInterceptor,
    );
    exports.push(CacheService, CacheMetrics, CacheMetricsInterceptor);
  }
  return {
    module: seam?.module ?? RedisCacheModule,
    global,
    imports: [DiscoveryModule, ...imports],
    providers,
    exports,
  };
}
