import { Module, type DynamicModule, type INestApplicationContext, type Provider } from '@nestjs/common';
import { cacheNameOf, cacheTokens, DEFAULT_CACHE } from '../cache-names.js';
import type { CacheEngine } from '../core/cache-engine.js';
import { RedisCacheConfigError } from '../errors.js';
import type { RedisCacheModuleOptions } from '../options/redis-cache-options.interface.js';
import { registration } from '../redis-cache.module.js';
import { BypassingExecutor } from './bypassing-executor.js';
import { InMemoryBackend } from './in-memory-backend.js';
import { RedisCacheTesting } from './redis-cache-testing.js';

/**
 * Options of `RedisCacheTestingModule.forRoot()`: those of `RedisCacheModule.forRoot()` but `redis`,
 * and the `disabled` switch. `jitter` defaults to 0 here, so an entry expires exactly at its TTL.
 */
export interface RedisCacheTestingOptions extends Omit<RedisCacheModuleOptions, 'redis'> {
  /**
   * Caching switched off: every decorated call runs its method and is recorded as a `bypass`, and
   * `CacheService` stores nothing (`get` finds nothing, `getOrSet` runs its loader every time).
   * Decorators' options are still checked at bootstrap. Default `false`.
   */
  disabled?: boolean;
}

/**
 * The DI token of a testing registration's `RedisCacheTesting` (the class itself for the default cache).
 *
 * @example
 * const sessions = moduleRef.get<RedisCacheTesting>(getCacheTestingToken('sessions'));
 */
export function getCacheTestingToken(name?: string): string | typeof RedisCacheTesting {
  const cache = cacheNameOf(name, 'getCacheTestingToken');
  return cache === DEFAULT_CACHE ? RedisCacheTesting : `nestjs-redis-cache:testing:${cache}`;
}

/**
 * The `RedisCacheTesting` of the cache registered as `name` (the default cache without one).
 *
 * @example
 * const sessions = getCacheTesting(app, 'sessions');
 * sessions.advance('30m');
 */
export function getCacheTesting(app: Pick<INestApplicationContext, 'get'>, name?: string): RedisCacheTesting {
  return app.get<RedisCacheTesting>(getCacheTestingToken(name), { strict: false });
}

/**
 * The cache for users' own tests: the same providers as `RedisCacheModule` (`CacheService`,
 * `@InjectCache(name)`, what decorated methods and `CacheMetricsInterceptor` need), running on an
 * in-process store instead of Redis. Its semantics are the module's own — TTLs, tags, prefix clears,
 * single-flight, leases, stale windows, the write order — and its clock is the test's to move
 * (`RedisCacheTesting.advance`). Nothing connects anywhere. Each application gets an empty store.
 *
 * @example
 * // a unit test of a controller whose handlers are decorated
 * const moduleRef = await Test.createTestingModule({
 *   imports: [RedisCacheTestingModule.forRoot()],
 *   controllers: [UsersController],
 *   providers: [UsersService],
 * }).compile();
 *
 * // an app with several caches registers each one
 * imports: [RedisCacheTestingModule.forRoot(), RedisCacheTestingModule.forRoot({ name: 'sessions' })]
 *
 * // the AppModule itself, its Redis registration swapped (keep the registration in a constant)
 * Test.createTestingModule({ imports: [AppModule] }).overrideModule(cacheModule).useModule(RedisCacheTestingModule.forRoot())
 */
@Module({})
export class RedisCacheTestingModule {
  static forRoot(options: RedisCacheTestingOptions = {}): DynamicModule {
    const where = 'RedisCacheTestingModule.forRoot';
    const name = cacheNameOf(options.name, where);
    if ((options as RedisCacheModuleOptions).redis !== undefined) {
      throw new RedisCacheConfigError(`${where}: the testing module runs without Redis; drop the \`redis\` option`);
    }
    const { disabled = false, ...cacheOptions } = options;
    const tokens = cacheTokens(name);
    const backend = `nestjs-redis-cache:testing-backend:${name}`;
    const testing = `nestjs-redis-cache:testing:${name}`;
    const providers: Provider[] = [
      // A factory, not a value: every application compiled from this module gets a fresh store.
      { provide: backend, useFactory: () => new InMemoryBackend(!disabled) },
      {
        provide: testing,
        useFactory: (store: InMemoryBackend, engine: CacheEngine) => new RedisCacheTesting(store, engine, disabled),
        inject: [backend, tokens.engine],
      },
    ];
    const exports: NonNullable<DynamicModule['exports']> = [testing];
    if (name === DEFAULT_CACHE) {
      providers.push({ provide: RedisCacheTesting, useExisting: testing });
      exports.push(RedisCacheTesting);
    }
    return registration(
      name,
      options.isGlobal ?? true,
      [],
      [{ provide: tokens.options, useValue: { ...cacheOptions, jitter: cacheOptions.jitter ?? 0 } }],
      {
        module: RedisCacheTestingModule,
        backend,
        providers,
        exports,
        executor: disabled ? (engine) => new BypassingExecutor(engine) : undefined,
      },
    );
  }
}
