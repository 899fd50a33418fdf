// Several caches in one app: `RedisCacheModule.forRoot({ name })` registrations, each with its own
// Redis, namespace and options, chosen per method with `cache` and injected with `@InjectCache`. Each
// registration checks, counts and serves only the methods that use it; the wiring mistakes (a cache
// no registration has, two global registrations of one cache, a provider that cannot see its
// cache's registration) fail the bootstrap with a message that says what to do.
import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Module,
  Param,
  UseInterceptors,
  type DynamicModule,
  type Provider,
  type Type,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import request from 'supertest';
import {
  Cacheable,
  CacheEvict,
  CacheMetricsInterceptor,
  CacheService,
  getCacheToken,
  InjectCache,
  RedisCacheConfigError,
  RedisCacheModule,
} from 'nestjs-redis-cache';
import { startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';
import { rawRedis, testRedisConnection, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Accounts {
  loads = 0;

  constructor(
    readonly cache: CacheService,
    @InjectCache('sessions') readonly sessions: CacheService,
  ) {}

  @Cacheable({ key: 'account:{0}' })
  async account(id: number): Promise<{ id: number; load: number }> {
    return { id, load: ++this.loads };
  }

  // The profile `session` exists only in the sessions cache's options.
  @Cacheable({ cache: 'sessions', key: 'session:{0}', ttl: 'session' })
  async session(token: string): Promise<{ token: string; load: number }> {
    return { token, load: ++this.loads };
  }

  @CacheEvict({ cache: 'sessions', key: 'session:{0}' })
  async logout(_token: string): Promise<void> {}
}

@Controller('sessions')
@UseInterceptors(CacheMetricsInterceptor)
class SessionsController {
  constructor(private readonly accounts: Accounts) {}

  @Get(':token')
  session(@Param('token') token: string) {
    return this.accounts.session(token);
  }
}

describe('named caches', () => {
  let sessionsRedis: LocalRedisServer;
  let sessionsAdmin: Redis;
  const admin = rawRedis();

  beforeAll(async () => {
    sessionsRedis = await startLocalRedis();
    sessionsAdmin = new Redis(sessionsRedis.url);
  });
  afterAll(async () => {
    sessionsAdmin?.disconnect();
    await admin.quit();
    await sessionsRedis?.stop();
  });

  function sessionsCache(namespace: string, extra: { isGlobal?: boolean } = {}): DynamicModule {
    return RedisCacheModule.forRoot({
      name: 'sessions',
      redis: sessionsRedis.url,
      namespace,
      ttlProfiles: { session: '30m' },
      ...extra,
    });
  }

  /** Compiles and inits an app; the caller closes it. */
  async function boot(
    imports: DynamicModule['imports'],
    providers: Provider[] = [Accounts],
    controllers: Type<unknown>[] = [SessionsController],
  ) {
    const moduleRef = await Test.createTestingModule({ imports, providers, controllers }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await app.init();
    } catch (err) {
      await app.close();
      throw err;
    }
    return app;
  }

  it("each method is served by its cache: that cache's Redis, namespace, TTLs and counters", async () => {
    const main = uniqueNamespace('main');
    const sess = uniqueNamespace('sess');
    const app = await boot([
      RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace: main }),
      sessionsCache(sess),
    ]);
    try {
      const accounts = app.get(Accounts);
      expect(await accounts.account(1)).toEqual({ id: 1, load: 1 });
      expect(await accounts.account(1)).toEqual({ id: 1, load: 1 });
      expect(await accounts.session('abc')).toEqual({ token: 'abc', load: 2 });
      expect(await accounts.session('abc')).toEqual({ token: 'abc', load: 2 });

      // Where each entry went, with which TTL.
      expect(await admin.exists(`${main}:account:1`)).toBe(1);
      expect(await sessionsAdmin.exists(`${main}:account:1`)).toBe(0);
      expect(await sessionsAdmin.pttl(`${sess}:session:abc`)).toBeGreaterThan(29 * 60_000);
      expect(await sessionsAdmin.pttl(`${sess}:session:abc`)).toBeLessThanOrEqual(33 * 60_000);
      expect(await admin.exists(`${sess}:session:abc`)).toBe(0);

      // CacheService is the default cache; @InjectCache('sessions') and getCacheToken('sessions') the other.
      expect(accounts.cache).toBe(app.get(CacheService));
      expect(accounts.sessions).toBe(app.get(getCacheToken('sessions')));
      expect(accounts.sessions).not.toBe(accounts.cache);
      expect(await accounts.sessions.get('session:abc')).toEqual({ token: 'abc', load: 2 });
      expect(await accounts.cache.get('session:abc')).toBeUndefined();

      // Each registration counts only its own methods.
      expect(Object.keys(accounts.cache.stats().byName)).toEqual(['Accounts.account']);
      expect(accounts.cache.stats()).toMatchObject({ hits: 1, misses: 1 });
      expect(Object.keys(accounts.sessions.stats().byName)).toEqual(['Accounts.session']);
      expect(accounts.sessions.stats()).toMatchObject({ hits: 1, misses: 1 });

      // An eviction goes to its own cache.
      await accounts.logout('abc');
      expect(await accounts.sessions.get('session:abc')).toBeUndefined(); // (a tombstone stays: docs/lease-protocol.md, "Writes, evictions and the horizon")
      expect(await accounts.session('abc')).toEqual({ token: 'abc', load: 3 });
    } finally {
      await app.close();
    }
  });

  it('X-Cache follows a route served by a named cache', async () => {
    const app = await boot([
      RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace: uniqueNamespace('main') }),
      sessionsCache(uniqueNamespace('sess')),
    ]);
    try {
      const first = await request(app.getHttpServer()).get('/sessions/xyz').expect(200);
      const second = await request(app.getHttpServer()).get('/sessions/xyz').expect(200);
      expect([first.headers['x-cache'], second.headers['x-cache']]).toEqual(['MISS', 'HIT']);
      expect(second.body).toEqual(first.body);
    } finally {
      await app.close();
    }
  });

  it('a cache named by forRootAsync({ name })', async () => {
    const sess = uniqueNamespace('sess-async');
    const app = await boot([
      RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace: uniqueNamespace('main') }),
      RedisCacheModule.forRootAsync({
        name: 'sessions',
        useFactory: async () => ({ redis: sessionsRedis.url, namespace: sess, ttlProfiles: { session: 600 } }),
      }),
    ]);
    try {
      await app.get(Accounts).session('t');
      expect(await sessionsAdmin.pttl(`${sess}:session:t`)).toBeGreaterThan(590_000);
    } finally {
      await app.close();
    }
  });

  it('a method naming a cache no registration has fails the bootstrap, naming the method', async () => {
    @Injectable()
    class Sessions {
      @Cacheable({ cache: 'sessions', key: 'session:{0}' })
      async session(token: string): Promise<string> {
        return token;
      }
    }
    const error = await boot(
      [RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace: uniqueNamespace('x') })],
      [Sessions],
      [],
    ).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RedisCacheConfigError);
    expect((error as Error).message).toMatch(
      /^Sessions\.session uses the cache 'sessions', and the app registers no such cache \(registered: 'default'\)\. Register it with RedisCacheModule\.forRoot\(\{ name: 'sessions' \}\)/,
    );
  });

  it('two global registrations of one cache fail the bootstrap instead of one silently winning', async () => {
    for (const imports of [
      [
        RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace: uniqueNamespace('a') }),
        RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace: uniqueNamespace('b') }),
        sessionsCache(uniqueNamespace('s')),
      ],
      [
        RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace: uniqueNamespace('a') }),
        sessionsCache(uniqueNamespace('s1')),
        sessionsCache(uniqueNamespace('s2')),
      ],
    ]) {
      const error = await boot(imports).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(RedisCacheConfigError);
      expect((error as Error).message).toMatch(
        /is registered globally 2 times: a module would get whichever Nest saw first/,
      );
    }
  });

  it('registrations that are not global serve the modules that import them, each its own', async () => {
    const [nsA, nsB] = [uniqueNamespace('mod-a'), uniqueNamespace('mod-b')];
    @Injectable()
    class Greeter {
      runs = 0;
      constructor(readonly cache: CacheService) {}
      @Cacheable({ key: 'hello:{0}' })
      async hello(name: string): Promise<string> {
        return `${name} ${++this.runs}`;
      }
    }
    const local = (namespace: string) =>
      RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace, isGlobal: false });
    const cacheA = local(nsA);
    const cacheB = local(nsB);
    @Module({ imports: [cacheA], providers: [{ provide: 'A', useClass: Greeter }], exports: ['A'] })
    class ModuleA {}
    @Module({ imports: [cacheB], providers: [{ provide: 'B', useClass: Greeter }], exports: ['B'] })
    class ModuleB {}
    const app = await boot([ModuleA, ModuleB], [], []);
    try {
      const [a, b] = [app.get<Greeter>('A'), app.get<Greeter>('B')];
      expect(await a.hello('x')).toBe('x 1');
      expect(await a.hello('x')).toBe('x 1');
      expect(await b.hello('x')).toBe('x 1');
      expect([await admin.exists(`${nsA}:hello:x`), await admin.exists(`${nsB}:hello:x`)]).toEqual([1, 1]);
      expect(a.cache).not.toBe(b.cache);
      expect(a.cache.stats()).toMatchObject({ hits: 1, misses: 1 });
      expect(b.cache.stats()).toMatchObject({ hits: 0, misses: 1 });
    } finally {
      await app.close();
    }
  });

  it('the decorators of one method use one cache: mixing two is refused when the class is defined', () => {
    expect(() => {
      class Mixed {
        @Cacheable({ cache: 'sessions', key: 'k:{0}' })
        @CacheEvict({ key: 'k:{0}' })
        async both(_id: number): Promise<number> {
          return 1;
        }
      }
      return Mixed;
    }).toThrow(
      "Mixed.both @Cacheable: the decorators of one method use one cache, here 'default' and 'sessions'; evict from another cache in the method's body (@InjectCache('sessions'))",
    );
    expect(() => Cacheable({ cache: 'no spaces' })).not.toThrow(); // checked where it is applied:
    expect(() => {
      class BadName {
        @Cacheable({ cache: 'no spaces' })
        async one(): Promise<number> {
          return 1;
        }
      }
      return BadName;
    }).toThrow(RedisCacheConfigError);
  });
});
