// RedisCacheTestingModule and RedisCacheTesting themselves: the kit users build their own tests with.
// What the cache does on it (the module's semantics) is the contract suite's (test/contract), run on
// Redis and on this store alike.
import 'reflect-metadata';
import { createServer, type Server } from 'node:net';
import { Controller, Get, Injectable, Module, Param, UseInterceptors, type INestApplication } from '@nestjs/common';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { lastValueFrom, Observable, of } from 'rxjs';
import request from 'supertest';
import {
  Cacheable,
  CacheEvict,
  CacheInterceptor,
  CacheMetricsInterceptor,
  CacheService,
  type CacheManagerAdapter,
  getCacheTesting,
  InjectCache,
  RedisCacheConfigError,
  RedisCacheManagerModule,
  RedisCacheModule,
  RedisCacheTesting,
  RedisCacheTestingModule,
  type RedisCacheTestingOptions,
} from 'nestjs-redis-cache';

@Injectable()
class UsersService {
  loads = 0;

  @Cacheable({ key: 'user:{0}', ttl: '1m' })
  async find(id: number): Promise<{ id: number; load: number }> {
    this.loads++;
    return { id, load: this.loads };
  }

  @Cacheable({ key: 'profile:{0}', ttl: 'profile' })
  async profile(id: number): Promise<string> {
    this.loads++;
    return `profile ${id} (${this.loads})`;
  }

  @CacheEvict({ key: 'user:{0}' })
  async remove(_id: number): Promise<void> {}

  @Cacheable({ key: 'names:{0}' })
  names(id: number): Observable<string> {
    this.loads++;
    return of(`name ${id}`);
  }
}

@Injectable()
class SessionsService {
  loads = 0;

  constructor(@InjectCache('sessions') readonly sessions: CacheService) {}

  @Cacheable({ cache: 'sessions', key: 'session:{0}', ttl: '30m' })
  async find(id: string): Promise<string> {
    this.loads++;
    return `session ${id} (${this.loads})`;
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A testing module around `providers` with the kit, initialised; the caller closes it. */
async function kitApp(
  providers: NonNullable<Parameters<typeof Test.createTestingModule>[0]['providers']>,
  ...registrations: RedisCacheTestingOptions[]
): Promise<INestApplication> {
  const imports = (registrations.length > 0 ? registrations : [{}]).map((options) =>
    RedisCacheTestingModule.forRoot({ ttlProfiles: { profile: '1h' }, ...options }),
  );
  const moduleRef = await Test.createTestingModule({ imports, providers }).compile();
  return moduleRef.createNestApplication({ logger: false }).init();
}

describe('RedisCacheTestingModule', () => {
  let app: INestApplication;
  afterEach(() => app?.close());

  describe('RedisCacheTesting', () => {
    let users: UsersService;
    let kit: RedisCacheTesting;

    beforeEach(async () => {
      app = await kitApp([UsersService]);
      users = app.get(UsersService);
      kit = app.get(RedisCacheTesting);
    });

    it('counts hits and misses per method, and calls() gives all its counters (zeros before the first)', async () => {
      expect(kit.calls('UsersService.find')).toMatchObject({ hits: 0, misses: 0, bypasses: 0 });
      await users.find(1);
      await users.find(1);
      await users.find(2);
      await users.profile(1);
      await users.remove(1);
      expect(kit.misses('UsersService.find')).toBe(2);
      expect(kit.hits('UsersService.find')).toBe(1);
      expect(kit.misses('UsersService.profile')).toBe(1);
      expect(kit.calls('UsersService.remove')).toMatchObject({ bypasses: 1, hits: 0 });
      expect(kit.calls('UsersService.find')).toEqual(app.get(CacheService).stats().byName['UsersService.find']);
    });

    it('advance() moves TTLs without sleeping: milliseconds or a duration', async () => {
      await users.find(1);
      kit.advance('59s');
      await users.find(1);
      expect(kit.hits('UsersService.find')).toBe(1);
      kit.advance(1_001);
      expect(await users.find(1)).toEqual({ id: 1, load: 2 });
      await users.profile(1);
      kit.advance('59m');
      expect(await users.profile(1)).toBe('profile 1 (3)');
      kit.advance('1.5h');
      expect(await users.profile(1)).toBe('profile 1 (4)');
    });

    it('advance() refuses what is not a duration', () => {
      expect(() => kit.advance(-1)).toThrow(RedisCacheConfigError);
      expect(() => kit.advance('soon' as '1s')).toThrow(/milliseconds >= 0 or a duration/);
      expect(() => kit.advance(Number.NaN)).toThrow(RedisCacheConfigError);
    });

    it('advance() ends leases: a caller waiting for a load that hangs takes over at lockTtl', async () => {
      const cache = app.get(CacheService);
      const options = { tags: ['t'], lockTtl: '10s', lockWait: '1m' } as const;
      let release!: (value: string) => void;
      const hanging = cache.getOrSet('report', () => new Promise<string>((resolve) => (release = resolve)), options);
      await delay(10);
      // A tag invalidation keeps later callers from joining the load in flight: they wait on its lease.
      await cache.invalidateTags('t');
      const waiting = cache.getOrSet('report', async () => 'loaded by the waiter', options);
      await delay(10);
      kit.advance('10s');
      const started = Date.now();
      expect(await waiting).toBe('loaded by the waiter');
      expect(Date.now() - started).toBeLessThan(1_000);
      release('loaded by the first caller');
      expect(await hanging).toBe('loaded by the first caller');
      expect(await cache.get('report')).toBe('loaded by the waiter');
    });

    it('keys() shows the cached entries, reset() drops them and the counters', async () => {
      await users.find(1);
      await users.find(1);
      await users.profile(2);
      await app.get(CacheService).set('manual', 1);
      await users.remove(3); // a tombstone is no value
      expect(kit.keys()).toEqual(['cache:manual', 'cache:profile:2', 'cache:user:1']);
      kit.reset();
      expect(kit.keys()).toEqual([]);
      expect(kit.calls('UsersService.find')).toMatchObject({ hits: 0, misses: 0, latency: { count: 0 } });
      expect(app.get(CacheService).stats()).toMatchObject({ hits: 0, misses: 0 });
      expect(await users.find(1)).toEqual({ id: 1, load: 3 });
      expect(kit.misses('UsersService.find')).toBe(1);
    });

    it('CacheService.client says it is not there', () => {
      expect(() => app.get(CacheService).client).toThrow(
        'CacheService.client is not available in RedisCacheTestingModule',
      );
    });
  });

  it('disabled: every decorated call runs its method and is a bypass; CacheService keeps nothing', async () => {
    app = await kitApp([UsersService], { disabled: true });
    const users = app.get(UsersService);
    const kit = app.get(RedisCacheTesting);
    const cache = app.get(CacheService);
    expect(kit.disabled).toBe(true);
    expect(await users.find(1)).toEqual({ id: 1, load: 1 });
    expect(await users.find(1)).toEqual({ id: 1, load: 2 });
    expect(kit.calls('UsersService.find')).toMatchObject({ bypasses: 2, hits: 0, misses: 0 });
    const names = users.names(1);
    expect(users.loads).toBe(3); // run as it is: the method made its (cold) Observable
    expect(await lastValueFrom(names)).toBe('name 1');
    expect(kit.calls('UsersService.names')).toMatchObject({ bypasses: 1 });
    await cache.set('k', 'v');
    expect(await cache.get('k')).toBeUndefined();
    let loads = 0;
    await cache.getOrSet('g', async () => ++loads);
    await cache.getOrSet('g', async () => ++loads);
    expect(loads).toBe(2);
    expect(kit.keys()).toEqual([]);
  });

  it('disabled still checks the decorators at bootstrap', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheTestingModule.forRoot({ disabled: true })], // no 'profile' TTL profile
      providers: [UsersService],
    }).compile();
    const unchecked = moduleRef.createNestApplication({ logger: false });
    await expect(unchecked.init()).rejects.toThrow(/UsersService.profile @Cacheable: ttl 'profile'/);
    await unchecked.close();
  });

  it('gives every application a store of its own, even from one forRoot()', async () => {
    const registration = RedisCacheTestingModule.forRoot({ ttlProfiles: { profile: '1h' } });
    const boot = async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [registration],
        providers: [UsersService],
      }).compile();
      return moduleRef.createNestApplication({ logger: false }).init();
    };
    const first = await boot();
    await first.get(UsersService).find(1);
    expect(first.get(RedisCacheTesting).keys()).toEqual(['cache:user:1']);
    await first.close();
    app = await boot();
    expect(app.get(RedisCacheTesting).keys()).toEqual([]);
    await app.get(UsersService).find(1);
    expect(app.get(RedisCacheTesting).misses('UsersService.find')).toBe(1);
  });

  it('registers named caches side by side, each with its own store, clock and RedisCacheTesting', async () => {
    app = await kitApp([UsersService, SessionsService], {}, { name: 'sessions', namespace: 'sess' });
    const sessions = app.get(SessionsService);
    const sessionsKit = getCacheTesting(app, 'sessions');
    expect(getCacheTesting(app)).toBe(app.get(RedisCacheTesting));
    await sessions.find('a');
    await sessions.find('a');
    await sessions.sessions.set('token', 'x');
    await app.get(UsersService).find(1);
    expect(sessionsKit.keys()).toEqual(['sess:session:a', 'sess:token']);
    expect(sessionsKit.hits('SessionsService.find')).toBe(1);
    expect(app.get(RedisCacheTesting).keys()).toEqual(['cache:user:1']);
    app.get(RedisCacheTesting).advance('1h');
    expect(await sessions.find('a')).toBe('session a (1)');
    sessionsKit.advance('30m');
    expect(await sessions.find('a')).toBe('session a (2)');
  });

  it('advance() empties the in-process tier (l1), which keeps values by the process clock', async () => {
    app = await kitApp([UsersService], { l1: { max: 100, ttl: '1h' } });
    const users = app.get(UsersService);
    const kit = app.get(RedisCacheTesting);
    // L1 keeps values once its presence has settled (1 s after boot), as with Redis.
    await delay(1_100);
    await users.find(1);
    await users.find(1);
    await users.find(1);
    expect(kit.calls('UsersService.find')).toMatchObject({ misses: 1, l1Hits: 1 });
    kit.advance('61s');
    expect(await users.find(1)).toEqual({ id: 1, load: 2 });
  });

  it('serves CACHE_MANAGER through RedisCacheManagerModule, as the real module does', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheTestingModule.forRoot(), RedisCacheManagerModule.register()],
    }).compile();
    app = await moduleRef.createNestApplication({ logger: false }).init();
    const manager = app.get<CacheManagerAdapter>(CACHE_MANAGER);
    await manager.set('k', 'v', 1_000); // milliseconds, as cache-manager's
    expect(await manager.get('k')).toBe('v');
    app.get(RedisCacheTesting).advance(1_001);
    expect(await manager.get('k')).toBeUndefined();
  });

  it('refuses a redis option: it runs without one', () => {
    expect(() => RedisCacheTestingModule.forRoot({ redis: 'redis://localhost' } as RedisCacheTestingOptions)).toThrow(
      /runs without Redis/,
    );
  });

  describe('a decorated controller in a unit test', () => {
    @Injectable()
    class ItemsService {
      loads = 0;

      @Cacheable({ key: 'item:{0}' })
      async find(id: string): Promise<{ id: string; load: number }> {
        this.loads++;
        return { id, load: this.loads };
      }
    }

    @Controller('items')
    @UseInterceptors(CacheInterceptor, CacheMetricsInterceptor)
    class ItemsController {
      constructor(private readonly items: ItemsService) {}

      @Get(':id')
      get(@Param('id') id: string): Promise<{ id: string; load: number }> {
        return this.items.find(id);
      }
    }

    const builder = (
      providers: NonNullable<Parameters<typeof Test.createTestingModule>[0]['providers']>,
      imports = [],
    ) => Test.createTestingModule({ imports, controllers: [ItemsController], providers: [ItemsService, ...providers] });

    it('cannot be built on the stub @nestjs/cache-manager tests use', async () => {
      await expect(builder([{ provide: CACHE_MANAGER, useValue: {} }]).compile()).rejects.toThrow(
        /can't resolve dependencies of the HttpCacheInterceptor/,
      );
    });

    it('is built with RedisCacheTestingModule.forRoot() and caches over HTTP', async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [RedisCacheTestingModule.forRoot()],
        controllers: [ItemsController],
        providers: [ItemsService],
      }).compile();
      app = await moduleRef.createNestApplication({ logger: false }).init();
      const first = await request(app.getHttpServer()).get('/items/7').expect(200);
      expect(first.body).toEqual({ id: '7', load: 1 });
      expect(first.headers['x-cache']).toBe('MISS');
      const second = await request(app.getHttpServer()).get('/items/7').expect(200);
      expect(second.body).toEqual({ id: '7', load: 1 });
      expect(second.headers['x-cache']).toBe('HIT');
      expect(app.get(ItemsService).loads).toBe(1);
      // The response (HttpCacheInterceptor) and the service's value.
      expect(app.get(RedisCacheTesting).keys()).toEqual([expect.stringMatching(/^cache:http:/), 'cache:item:7']);
    });
  });

  describe('connections', () => {
    let server: Server;
    let connections = 0;
    const previous = process.env.REDIS_URL;

    beforeAll(async () => {
      server = createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      process.env.REDIS_URL = `redis://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    beforeEach(() => (connections = 0));
    afterAll(async () => {
      process.env.REDIS_URL = previous;
      await new Promise((resolve) => server.close(resolve));
    });

    const bootAndUse = async (builder: TestingModuleBuilder) => {
      const moduleRef = await builder.compile();
      app = await moduleRef.createNestApplication({ logger: false }).init();
      await app.get(UsersService).find(1);
      await app.get(UsersService).find(1);
      await app.close();
      await delay(50);
    };

    it('none: the kit boots and caches without trying to reach any Redis', async () => {
      await bootAndUse(
        Test.createTestingModule({
          imports: [RedisCacheTestingModule.forRoot({ ttlProfiles: { profile: '1h' } })],
          providers: [UsersService],
        }),
      );
      expect(connections).toBe(0);
    });

    it('none when it replaces the AppModule’s registration (overrideModule)', async () => {
      const cacheModule = RedisCacheModule.forRoot({ ttlProfiles: { profile: '1h' } });
      @Module({ imports: [cacheModule], providers: [UsersService] })
      class AppModule {}
      await bootAndUse(
        Test.createTestingModule({ imports: [AppModule] })
          .overrideModule(cacheModule)
          .useModule(RedisCacheTestingModule.forRoot({ ttlProfiles: { profile: '1h' } })),
      );
      expect(connections).toBe(0);
    });

    it('(the real module, by contrast, connects there)', async () => {
      const { port } = server.address() as { port: number };
      // No reconnection: a client closed while reconnecting leaves ioredis's timer behind for 2 s.
      const redis = { host: '127.0.0.1', port, retryStrategy: () => null };
      await bootAndUse(
        Test.createTestingModule({
          imports: [RedisCacheModule.forRoot({ redis, ttlProfiles: { profile: '1h' } })],
          providers: [UsersService],
        }),
      );
      expect(connections).toBeGreaterThan(0);
    });
  });
});
