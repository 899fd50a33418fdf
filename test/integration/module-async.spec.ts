// RedisCacheModule.forRootAsync (useFactory + inject + imports, useClass, useExisting) and isGlobal:
// whether a decorated provider in another module reaches the cache.
import 'reflect-metadata';
import { Inject, Injectable, Module, type DynamicModule, type INestApplication, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  Cacheable,
  CacheService,
  RedisCacheConfigError,
  RedisCacheModule,
  type RedisCacheModuleOptions,
  type RedisCacheOptionsFactory,
} from 'nestjs-redis-cache';
import { rawRedis, testRedisConnection, uniqueNamespace } from '../support/test-app.js';

const SETTINGS = Symbol('SETTINGS');
interface Settings {
  namespace: string;
  ttl: number;
}

/** A stand-in for ConfigModule: exports the settings the cache options are built from. */
function settingsModule(settings: Settings): DynamicModule {
  @Injectable()
  class CacheOptionsFromSettings implements RedisCacheOptionsFactory {
    constructor(@Inject(SETTINGS) private readonly settings: Settings) {}
    createRedisCacheOptions(): RedisCacheModuleOptions {
      return { redis: testRedisConnection(), namespace: this.settings.namespace, ttl: this.settings.ttl, jitter: 0 };
    }
  }
  @Module({})
  class SettingsModule {}
  return {
    module: SettingsModule,
    providers: [{ provide: SETTINGS, useValue: settings }, CacheOptionsFromSettings],
    exports: [SETTINGS, CacheOptionsFromSettings],
  };
}

@Injectable()
class ProductsService {
  loads = 0;
  @Cacheable({ key: 'product:{0}' })
  async find(id: number): Promise<{ id: number }> {
    this.loads++;
    return { id };
  }
}

@Module({ providers: [ProductsService], exports: [ProductsService] })
class ProductsModule {}

async function start(imports: Array<Type<unknown> | DynamicModule>): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('RedisCacheModule.forRootAsync', () => {
  const redis = rawRedis();
  afterAll(() => redis.quit());

  /** The options reached the module: the entry is under their namespace with their TTL. */
  async function expectCachedUnder(app: INestApplication, namespace: string, ttlSeconds: number): Promise<void> {
    const products = app.get(ProductsService);
    await products.find(3);
    await products.find(3);
    expect(products.loads).toBe(1);
    const pttl = await redis.pttl(`${namespace}:product:3`);
    expect(pttl).toBeGreaterThan(ttlSeconds * 1000 - 2000);
    expect(pttl).toBeLessThanOrEqual(ttlSeconds * 1000);
  }

  it('useFactory with inject and imports', async () => {
    const settings = { namespace: uniqueNamespace('factory'), ttl: 77 };
    const app = await start([
      RedisCacheModule.forRootAsync({
        imports: [settingsModule(settings)],
        inject: [SETTINGS],
        useFactory: async (s: Settings) => ({
          redis: testRedisConnection(),
          namespace: s.namespace,
          ttl: s.ttl,
          jitter: 0,
        }),
      }),
      ProductsModule,
    ]);
    try {
      await expectCachedUnder(app, settings.namespace, 77);
    } finally {
      await app.close();
    }
  });

  it('useClass: the module instantiates the options factory with its own injections', async () => {
    const settings = { namespace: uniqueNamespace('use-class'), ttl: 88 };
    const settings$ = settingsModule(settings);
    const OptionsClass = settings$.providers![1] as Type<RedisCacheOptionsFactory>;
    const app = await start([
      RedisCacheModule.forRootAsync({ imports: [settings$], useClass: OptionsClass }),
      ProductsModule,
    ]);
    try {
      await expectCachedUnder(app, settings.namespace, 88);
    } finally {
      await app.close();
    }
  });

  it('useExisting: an options factory exported by an imported module', async () => {
    const settings = { namespace: uniqueNamespace('use-existing'), ttl: 99 };
    const settings$ = settingsModule(settings);
    const OptionsClass = settings$.providers![1] as Type<RedisCacheOptionsFactory>;
    const app = await start([
      RedisCacheModule.forRootAsync({ imports: [settings$], useExisting: OptionsClass }),
      ProductsModule,
    ]);
    try {
      await expectCachedUnder(app, settings.namespace, 99);
    } finally {
      await app.close();
    }
  });

  it('validates options produced asynchronously at app.init()', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheModule.forRootAsync({ useFactory: async () => ({ redis: testRedisConnection(), ttl: -1 }) })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await expect(app.init()).rejects.toThrow(RedisCacheConfigError);
    await app.close();
  });
});

describe('isGlobal', () => {
  const redis = rawRedis();
  afterAll(() => redis.quit());

  it('true (the default): a decorated provider in a module that does not import the cache is cached', async () => {
    const namespace = uniqueNamespace('global');
    const app = await start([RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace }), ProductsModule]);
    try {
      const products = app.get(ProductsService);
      await products.find(1);
      await products.find(1);
      expect(products.loads).toBe(1);
      expect(await redis.exists(`${namespace}:product:1`)).toBe(1);
      expect(app.get(CacheService).stats().byName['ProductsService.find']).toMatchObject({ hits: 1, misses: 1 });
    } finally {
      await app.close();
    }
  });

  it('true via forRootAsync as well', async () => {
    const namespace = uniqueNamespace('global-async');
    const app = await start([
      RedisCacheModule.forRootAsync({ useFactory: () => ({ redis: testRedisConnection(), namespace }) }),
      ProductsModule,
    ]);
    try {
      await app.get(ProductsService).find(1);
      expect(await redis.exists(`${namespace}:product:1`)).toBe(1);
    } finally {
      await app.close();
    }
  });

  it.each([
    ['forRoot', () => RedisCacheModule.forRoot({ redis: testRedisConnection(), isGlobal: false })],
    [
      'forRootAsync',
      () => RedisCacheModule.forRootAsync({ isGlobal: false, useFactory: () => ({ redis: testRedisConnection() }) }),
    ],
  ])(
    'false (%s): a decorated provider in a module that does not import the cache fails the bootstrap, saying why',
    async (_, cacheModule) => {
      const moduleRef = await Test.createTestingModule({ imports: [cacheModule(), ProductsModule] }).compile();
      const app = moduleRef.createNestApplication({ logger: false });
      const error = await app.init().then(
        () => undefined,
        (err: unknown) => err,
      );
      await app.close();
      expect(error).toBeInstanceOf(RedisCacheConfigError);
      // The class, the method, the module it is in, and the fix: not Nest's error about an internal token.
      expect((error as Error).message).toBe(
        'ProductsService.find (in ProductsModule): no RedisCacheModule.forRoot() is visible from ProductsModule, ' +
          'so its cache decorators have no cache. Import RedisCacheModule.forRoot() in ProductsModule, or register ' +
          'it once with isGlobal: true (the default).',
      );
    },
  );

  it('false: a feature module that imports the cache module gets the one cache of the app', async () => {
    const namespace = uniqueNamespace('local');
    const cacheModule = RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace, isGlobal: false });
    @Module({ imports: [cacheModule], providers: [ProductsService] })
    class FeatureModule {}
    const app = await start([cacheModule, FeatureModule]);
    try {
      const products = app.get(ProductsService);
      await products.find(2);
      await products.find(2);
      expect(products.loads).toBe(1);
      expect(await redis.exists(`${namespace}:product:2`)).toBe(1);
      // The root module's CacheService sees the feature's calls: one module instance, one set of counters.
      expect(app.get(CacheService).stats().byName['ProductsService.find']).toMatchObject({ hits: 1, misses: 1 });
    } finally {
      await app.close();
    }
  });
});
