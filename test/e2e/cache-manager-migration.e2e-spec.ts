// Moving an app from @nestjs/cache-manager to this module (README, "Migrating from
// @nestjs/cache-manager"). An app in the shape such apps have: a public statistics controller whose
// GET routes are cached by URL through `CacheInterceptor`, with per-route `@CacheTTL` and a fixed
// `@CacheKey`, and a service that uses `CACHE_MANAGER` by hand (get/set/del/mdel/clear). Its source is
// written once, over whichever package it imports; the same scenario runs on @nestjs/cache-manager
// (its in-memory store) and, after the import swap, on this module, with the same observations.
// The one edit the swap needs is the unit of `@CacheTTL`: milliseconds there, seconds here.
import 'reflect-metadata';
import * as cacheManager from '@nestjs/cache-manager';
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Query,
  UseInterceptors,
  type DynamicModule,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import * as ours from 'nestjs-redis-cache';
import request from 'supertest';

type Package = typeof cacheManager | typeof ours;

/** What the app's own code does with CACHE_MANAGER (a wrapper service of the kind such apps have). */
interface ManualCache {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttl?: number): Promise<unknown>;
  del(key: string): Promise<unknown>;
  mdel(keys: string[]): Promise<unknown>;
  clear(): Promise<unknown>;
}

/** Counts how often each statistic was computed, so a test sees what the cache answered. */
class Computations {
  readonly counts: Record<string, number> = {};
  next(name: string): number {
    return (this.counts[name] = (this.counts[name] ?? 0) + 1);
  }
}

/** The app, written against `lib`'s exports; `secondsUnit`: what 1 s is in its `@CacheTTL`. */
function statisticsApp(lib: Package, secondsUnit: number): { controller: Type<unknown>; service: Type<unknown> } {
  const { CacheInterceptor, CacheKey, CacheTTL, CACHE_MANAGER } = lib as typeof cacheManager;

  @Injectable()
  class StatisticsCache {
    constructor(@Inject(CACHE_MANAGER) readonly cache: ManualCache) {}
  }

  @Controller('stats')
  @UseInterceptors(CacheInterceptor)
  class StatisticsController {
    constructor(@Inject(Computations) private readonly computations: Computations) {}

    @Get('summary')
    @CacheTTL(60 * secondsUnit)
    summary() {
      return { route: 'summary', computed: this.computations.next('summary') };
    }

    @Get('daily')
    @CacheTTL(1 * secondsUnit)
    daily(@Query('day') day: string) {
      return { route: 'daily', day, computed: this.computations.next(`daily:${day}`) };
    }

    @Get('top')
    @CacheKey('stats-top')
    top(@Query('n') n: string) {
      return { route: 'top', n, computed: this.computations.next('top') };
    }
  }
  return { controller: StatisticsController, service: StatisticsCache };
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.each([
  ['@nestjs/cache-manager', cacheManager as Package, 1_000],
  ['nestjs-redis-cache (after the import swap)', ours as Package, 1],
])('a statistics app on %s', (_label, lib, secondsUnit) => {
  let app: INestApplication;
  let computations: Computations;
  let manual: ManualCache;

  beforeAll(async () => {
    const { controller, service } = statisticsApp(lib, secondsUnit);
    const imports: DynamicModule[] =
      lib === ours
        ? [
            ours.RedisCacheModule.forRoot({
              redis: process.env.TEST_REDIS_URL,
              namespace: `e2e-migration-${process.pid}-${Date.now()}`,
            }),
            ours.RedisCacheManagerModule.register(),
          ]
        : [cacheManager.CacheModule.register({ isGlobal: true })];
    const moduleRef = await Test.createTestingModule({
      imports,
      controllers: [controller],
      providers: [Computations, service],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    computations = app.get(Computations);
    manual = (app.get(service) as { cache: ManualCache }).cache;
  });
  afterAll(() => app?.close());

  const get = (url: string) => request(app.getHttpServer()).get(url).expect(200);

  it('caches a route by its URL: the query string makes another entry', async () => {
    expect((await get('/stats/summary')).body).toEqual({ route: 'summary', computed: 1 });
    expect((await get('/stats/summary')).body).toEqual({ route: 'summary', computed: 1 });
    expect((await get('/stats/daily?day=1')).body).toEqual({ route: 'daily', day: '1', computed: 1 });
    expect((await get('/stats/daily?day=2')).body).toEqual({ route: 'daily', day: '2', computed: 1 });
    expect((await get('/stats/daily?day=1')).body).toEqual({ route: 'daily', day: '1', computed: 1 });
    expect(computations.counts).toEqual({ summary: 1, 'daily:1': 1, 'daily:2': 1 });
  });

  it('keeps each route its own TTL', async () => {
    await get('/stats/daily?day=ttl');
    await delay(1_300); // past daily's 1 s, well within summary's 60 s
    expect((await get('/stats/daily?day=ttl')).body).toMatchObject({ computed: 2 });
    expect((await get('/stats/summary')).body).toEqual({ route: 'summary', computed: 1 });
  });

  it('@CacheKey: one entry whatever the query', async () => {
    expect((await get('/stats/top?n=3')).body).toEqual({ route: 'top', n: '3', computed: 1 });
    expect((await get('/stats/top?n=10')).body).toEqual({ route: 'top', n: '3', computed: 1 });
  });

  it('CACHE_MANAGER by hand: set with a TTL in milliseconds, get, del, mdel, clear', async () => {
    await manual.set('report:a', { total: 1 }, 60_000);
    await manual.set('report:b', { total: 2 }, 60_000);
    await manual.set('report:c', { total: 3 }, 60_000);
    await manual.set('report:short', { total: 4 }, 500);
    expect(await manual.get('report:a')).toEqual({ total: 1 });
    await delay(800);
    expect(await manual.get('report:short')).toBeUndefined();
    expect(await manual.get('report:b')).toEqual({ total: 2 });
    await manual.del('report:a');
    expect(await manual.get('report:a')).toBeUndefined();
    await manual.mdel(['report:b', 'report:c']);
    expect([await manual.get('report:b'), await manual.get('report:c')]).toEqual([undefined, undefined]);

    await manual.set('report:d', { total: 5 }, 60_000);
    await manual.clear();
    expect(await manual.get('report:d')).toBeUndefined();
    // The routes' entries are gone too: both packages clear the whole cache (here, its namespace).
    expect((await get('/stats/summary')).body).toEqual({ route: 'summary', computed: 2 });
  });
});

describe('CACHE_MANAGER on this module: what differs from cache-manager', () => {
  it('a TTL of 0 (or none) is the module default, not forever: every entry expires', async () => {
    const namespace = `e2e-migration-ttl-${process.pid}-${Date.now()}`;
    const moduleRef = await Test.createTestingModule({
      imports: [
        ours.RedisCacheModule.forRoot({ redis: process.env.TEST_REDIS_URL, namespace, ttl: '2h', jitter: 0 }),
        ours.RedisCacheManagerModule.register(),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      const manager = app.get<ours.CacheManagerAdapter>(ours.CACHE_MANAGER);
      await manager.set('zero', 1, 0);
      await manager.set('none', 2);
      await manager.set('ms', 3, 90_000);
      const { client } = app.get(ours.CacheService);
      for (const key of ['zero', 'none']) {
        expect(await client.pttl(`${namespace}:${key}`)).toBeGreaterThan(2 * 3_600_000 - 60_000);
      }
      expect(await client.pttl(`${namespace}:ms`)).toBeLessThanOrEqual(90_000);
      expect(await client.pttl(`${namespace}:ms`)).toBeGreaterThan(80_000);
      expect(await manager.wrap('wrapped', async () => 'loaded', 60_000)).toBe('loaded');
      expect(await manager.wrap('wrapped', async () => 'again', 60_000)).toBe('loaded');
      await expect(manager.set('bad', 1, -5)).rejects.toThrow(ours.RedisCacheConfigError);
    } finally {
      await app.close();
    }
  });
});
