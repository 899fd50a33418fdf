// The cache before `app.init()` started it and after `app.close()` stopped it (core/not-running.ts):
// every call goes to the source, reads miss, writes and invalidations do nothing, and nothing is
// thrown, counted or written to Redis. A provider a module builds before the app starts (an
// onModuleInit of another module, a script that only compiles the module) must not break or cache.
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Cacheable, CacheService, RedisCacheModule } from 'nestjs-redis-cache';
import { testRedisConnection } from '../support/redis-topology.js';
import { scanKeys } from '../support/redis-keys.js';
import { rawRedis, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Books {
  runs = 0;

  @Cacheable({ key: 'book:{0}', ttl: 60 })
  async find(id: number): Promise<{ id: number; run: number }> {
    return { id, run: ++this.runs };
  }

  batchRuns = 0;

  @Cacheable({ batch: { key: 'book:{0}' }, ttl: 60 })
  async findMany(ids: number[]): Promise<Array<{ id: number; run: number }>> {
    return ids.map((id) => ({ id, run: ++this.batchRuns }));
  }
}

describe('a cache that is not running', () => {
  const redis = rawRedis();
  afterAll(() => redis.quit());

  /** Every CacheService operation and a decorated call, twice each; what they answered. */
  async function exercise(cache: CacheService, books: Books) {
    let loads = 0;
    const loader = async () => ++loads;
    return {
      get: await cache.get('book:1'),
      getMany: await cache.getMany(['book:1', 'book:2', 'book:1']),
      set: await cache.set('book:1', { id: 1 }, { ttl: 60, tags: ['books'] }),
      getOrSet: [await cache.getOrSet('book:2', loader), await cache.getOrSet('book:2', loader)],
      del: await cache.del('book:1', 'book:2'),
      invalidateTags: await cache.invalidateTags(['books']),
      clear: await cache.clear('book:'),
      reclaim: await cache.reclaim(),
      calls: [await books.find(3), await books.find(3)],
      batches: [await books.findMany([5, 5]), await books.findMany([5])],
    };
  }

  const uncached = {
    get: undefined,
    getMany: [undefined, undefined, undefined],
    set: undefined,
    // Each call ran the loader, and each decorated call the method: nothing was kept between them.
    getOrSet: [1, 2],
    del: 0,
    invalidateTags: undefined,
    clear: 0,
    reclaim: 0,
    calls: [
      { id: 3, run: 1 },
      { id: 3, run: 2 },
    ],
    // A list loader gets its arguments as they are (duplicates included), every call.
    batches: [
      [
        { id: 5, run: 1 },
        { id: 5, run: 2 },
      ],
      [{ id: 5, run: 3 }],
    ],
  };

  it('goes to the source before app.init() and after app.close(): nothing thrown, counted or written', async () => {
    const namespace = uniqueNamespace('not-running');
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace, startupAdvisor: false })],
      providers: [Books],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    const cache = app.get(CacheService);
    const books = app.get(Books);

    expect(await exercise(cache, books)).toEqual(uncached);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 0, errors: 0 });
    const notRunning = { running: false, redis: 'down', subscribed: false, l1: 'off', pendingInvalidations: 0 };
    expect(cache.status()).toEqual(notRunning);

    await app.init();
    expect(cache.status()).toEqual({
      running: true,
      redis: 'up',
      subscribed: true,
      l1: 'off',
      pendingInvalidations: 0,
    });
    // Running, the same calls cache (the control: the answers above are the stand-in's, not the calls').
    books.runs = 0;
    books.batchRuns = 0;
    expect(await books.find(3)).toEqual({ id: 3, run: 1 });
    expect(await books.find(3)).toEqual({ id: 3, run: 1 });
    expect(await cache.getOrSet('book:4', async () => 'loaded')).toBe('loaded');
    expect(await cache.get('book:4')).toBe('loaded');
    expect(await books.findMany([6, 6])).toEqual([
      { id: 6, run: 1 },
      { id: 6, run: 1 },
    ]);
    expect(await cache.getMany(['book:3', 'book:6'])).toEqual([
      { id: 3, run: 1 },
      { id: 6, run: 1 },
    ]);
    await app.close();
    const stats = cache.stats();
    const written = (await scanKeys(redis, `${namespace}:*`)).sort();

    books.runs = 0;
    books.batchRuns = 0;
    expect(cache.status()).toEqual(notRunning);
    expect(await exercise(cache, books)).toEqual(uncached);
    expect(cache.stats()).toEqual(stats);
    expect((await scanKeys(redis, `${namespace}:*`)).sort()).toEqual(written);
  });
});
