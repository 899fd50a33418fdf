// staleWhileRevalidate: past its TTL and within the window a value is returned at once (outcome
// 'stale') while one background refresh, across every app on the Redis, reloads it. Past TTL + window
// the key is gone and the call is a normal miss. A failing refresh rejects nowhere and keeps the value.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService, type CacheNameStats } from 'nestjs-redis-cache';
import { timed, waitFor, waitUntilStale, watchUnhandledRejections, freshUntilOf } from '../support/load-helpers.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { delay } from '../support/timing.js';

const NAME = 'PriceService.price';
/** The method's delay: a stale answer must come far below it. */
const LOAD_MS = 600;
const TTL_MS = 500;
const SWR_MS = 1_500;

@Injectable()
class PriceService {
  runs = 0;
  fail = false;
  /** Tells the apps' values apart in the two-app test. */
  label = '';

  @Cacheable({ key: 'price:{0}', ttl: '500ms', staleWhileRevalidate: 1.5 })
  async price(id: number): Promise<string> {
    const run = ++this.runs;
    if (this.fail) throw new Error(`price ${id}: source down in run ${run}`); // fails fast
    await delay(LOAD_MS);
    return `price ${id} v${run}${this.label}`;
  }
}

describe('staleWhileRevalidate', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let ns: string;
  const key = (id: number) => `${ns}:price:${id}`;

  async function start(): Promise<{ prices: PriceService; cache: CacheService }> {
    const app = await createTestApp({ providers: [PriceService], cache: { namespace: ns, jitter: 0 } });
    apps.push(app);
    return { prices: app.get(PriceService), cache: app.get(CacheService) };
  }
  const stats = (cache: CacheService): CacheNameStats => cache.stats().byName[NAME];

  beforeEach(() => {
    ns = uniqueNamespace('swr');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('serves the old value at once while exactly one refresh runs; then a hit; past the window a miss', async () => {
    const { prices, cache } = await start();
    expect(await prices.price(1)).toBe('price 1 v1');
    // Kept past the TTL for stale readers: PX = ttl + staleWhileRevalidate.
    expect(await redis.pttl(key(1))).toBeGreaterThan(TTL_MS);
    expect(await redis.pttl(key(1))).toBeLessThanOrEqual(TTL_MS + SWR_MS);

    await waitUntilStale(redis, key(1));
    expect(await cache.get('price:1')).toBeUndefined(); // get returns fresh values only
    const first = await timed(() => prices.price(1));
    expect(first.value).toBe('price 1 v1');
    expect(first.ms).toBeLessThan(LOAD_MS / 2);

    // Many callers while the refresh runs, in waves: all answered at once with the old value.
    for (let wave = 0; wave < 5; wave++) {
      const { value, ms } = await timed(() => Promise.all(Array.from({ length: 20 }, () => prices.price(1))));
      expect(new Set(value)).toEqual(new Set(['price 1 v1']));
      expect(ms).toBeLessThan(LOAD_MS / 2);
      await delay(20);
    }
    expect(stats(cache)).toMatchObject({ stale: 101, misses: 1, hits: 0, refreshes: 1 });

    await waitFor('the refreshed value', async () => (await cache.get('price:1')) === 'price 1 v2');
    expect(prices.runs).toBe(2); // one refresh for 101 stale calls
    expect(await prices.price(1)).toBe('price 1 v2');
    expect(stats(cache)).toMatchObject({ hits: 1, stale: 101, misses: 1, refreshes: 1, refreshFailures: 0 });

    // Past TTL + staleWhileRevalidate the key is gone and the call waits for the method.
    const freshUntil = await freshUntilOf(redis, key(1));
    await waitFor('the key to expire', async () => (await redis.exists(key(1))) === 0, TTL_MS + SWR_MS + 3_000, 25);
    expect(Date.now()).toBeGreaterThanOrEqual(freshUntil + SWR_MS - 50);
    const late = await timed(() => prices.price(1));
    expect(late.value).toBe('price 1 v3');
    expect(late.ms).toBeGreaterThanOrEqual(LOAD_MS - 20);
    expect(stats(cache)).toMatchObject({ hits: 1, stale: 101, misses: 2, refreshes: 1, fallbacks: 0 });
  }, 12_000);

  it('two apps on one Redis and namespace: both serve stale, one refresh in all', async () => {
    const a = await start();
    const b = await start();
    a.prices.label = '@A';
    b.prices.label = '@B';
    expect(await a.prices.price(2)).toBe('price 2 v1@A');
    await waitUntilStale(redis, key(2));

    const calls = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).prices.price(2));
    const { value, ms } = await timed(() => Promise.all(calls));
    expect(new Set(value)).toEqual(new Set(['price 2 v1@A']));
    expect(ms).toBeLessThan(LOAD_MS / 2);
    // A second round on both while the refresh runs: still stale, still no second refresh.
    const again = await timed(() => Promise.all([a.prices.price(2), b.prices.price(2)]));
    expect(again.value).toEqual(['price 2 v1@A', 'price 2 v1@A']);

    await waitFor('the refreshed value', async () => (await a.cache.get('price:2')) !== undefined);
    const refreshed = await a.cache.get<string>('price:2');
    // Refreshed by whichever app took the lease: A's second run, or B's first.
    expect(['price 2 v2@A', 'price 2 v1@B']).toContain(refreshed);
    expect(await b.cache.get('price:2')).toBe(refreshed);
    expect(a.prices.runs + b.prices.runs).toBe(2);
    expect(stats(a.cache).refreshes + stats(b.cache).refreshes).toBe(1);
    expect(stats(a.cache).stale + stats(b.cache).stale).toBe(52);

    // The next call is a hit with the new value, in both apps.
    expect(await a.prices.price(2)).toBe(refreshed);
    expect(await b.prices.price(2)).toBe(refreshed);
    expect(stats(a.cache).hits).toBe(1);
    expect(stats(b.cache).hits).toBe(1);
    expect(a.prices.runs + b.prices.runs).toBe(2);
  });

  it('a failing refresh rejects nowhere, counts refreshFailures, and the stale value keeps being served', async () => {
    const unhandled = watchUnhandledRejections();
    try {
      const { prices, cache } = await start();
      expect(await prices.price(3)).toBe('price 3 v1');
      await waitUntilStale(redis, key(3));
      prices.fail = true;

      for (let round = 1; round <= 3; round++) {
        const { value, ms } = await timed(() => prices.price(3));
        expect(value).toBe('price 3 v1');
        expect(ms).toBeLessThan(LOAD_MS / 2);
        await waitFor(`failed refresh ${round}`, () => stats(cache).refreshFailures === round);
      }
      expect(prices.runs).toBe(4);
      expect(stats(cache)).toMatchObject({ stale: 3, misses: 1, refreshes: 3, refreshFailures: 3, errors: 0 });
      expect(await redis.exists(key(3))).toBe(1); // the old entry is still there, without a lease

      // Once the source is back, the next stale call's refresh lands.
      prices.fail = false;
      expect(await prices.price(3)).toBe('price 3 v1');
      await waitFor('the refreshed value', async () => (await cache.get('price:3')) === 'price 3 v5');
      expect(stats(cache)).toMatchObject({ stale: 4, refreshes: 4, refreshFailures: 3 });

      await delay(20); // let any stray rejection surface before looking
      expect(unhandled.rejections).toEqual([]);
    } finally {
      unhandled.stop();
    }
  });
});
