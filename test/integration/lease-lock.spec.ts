// The key's lease across applications. Two Nest apps A and B on the same Redis and namespace behave
// like two processes (each has its own engine, single-flight and release subscriber): a cold key runs
// its method once in all, the others waiting for the holder's value; `lock: false` lets each app load
// but only the holder writes; after `lockWait` a waiter loads without writing; a dead holder's lease
// delays callers only until it expires. Bad lease options fail app.init().
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  Cacheable,
  CacheService,
  RedisCacheConfigError,
  RedisCacheModule,
  type CacheableOptions,
  type CacheNameStats,
  type RedisCacheModuleOptions,
} from 'nestjs-redis-cache';
import { ENTRY_KIND, LEASE_KIND } from '../../lib/core/cache-entry.js';
import { leasePlaceholder, redisNow, timed, waitFor } from '../support/load-helpers.js';
import { createTestApp, initError, rawRedis, testRedisConnection, uniqueNamespace } from '../support/test-app.js';
import { delay } from '../support/timing.js';

type Method = 'stock' | 'unlocked' | 'impatient' | 'shortLease';

@Injectable()
class StockService {
  /** Which app this instance belongs to, in its values. */
  label = '?';
  delayMs = 300;
  runs: Record<Method, number> = { stock: 0, unlocked: 0, impatient: 0, shortLease: 0 };

  private async load(method: Method, id: number): Promise<string> {
    this.runs[method]++;
    await delay(this.delayMs);
    return `${method} ${id} from ${this.label}`;
  }

  @Cacheable({ key: 'stock:{0}', ttl: 60 })
  async stock(id: number): Promise<string> {
    return this.load('stock', id);
  }

  @Cacheable({ key: 'unlocked:{0}', ttl: 60, lock: false })
  async unlocked(id: number): Promise<string> {
    return this.load('unlocked', id);
  }

  @Cacheable({ key: 'impatient:{0}', ttl: 60, lockWait: 100 })
  async impatient(id: number): Promise<string> {
    return this.load('impatient', id);
  }

  @Cacheable({ key: 'short-lease:{0}', ttl: 60, lockTtl: '500ms' })
  async shortLease(id: number): Promise<string> {
    return this.load('shortLease', id);
  }
}

interface Node {
  app: INestApplication;
  stocks: StockService;
  cache: CacheService;
  stats(method: Method): CacheNameStats | undefined;
}

describe('leases across two apps on one Redis and namespace', () => {
  const redis = rawRedis();
  let ns: string;
  let a: Node;
  let b: Node;
  const extra: INestApplication[] = [];
  const key = (logical: string) => `${ns}:${logical}`;
  const kindOf = async (logical: string) => (await redis.getBuffer(key(logical)))?.[1];

  async function node(label: string): Promise<Node> {
    const app = await createTestApp({ providers: [StockService], cache: { namespace: ns, jitter: 0 } });
    const stocks = app.get(StockService);
    stocks.label = label;
    const cache = app.get(CacheService);
    return { app, stocks, cache, stats: (method) => cache.stats().byName[`StockService.${method}`] };
  }

  beforeEach(async () => {
    ns = uniqueNamespace('lease');
    a = await node('A');
    b = await node('B');
  });
  afterEach(async () => {
    await Promise.all([a.app.close(), b.app.close(), ...extra.splice(0).map((app) => app.close())]);
  });
  afterAll(() => redis.quit());

  it("a cold key called 100 times on each app runs the method once; B's callers get A's value as hits", async () => {
    const fromA = Array.from({ length: 100 }, () => a.stocks.stock(1));
    await waitFor('A to take the lease and run the method', () => a.stocks.runs.stock === 1);

    // While A loads, the key holds A's lease placeholder and reads as absent.
    expect(await kindOf('stock:1')).toBe(LEASE_KIND);
    expect(await redis.pttl(key('stock:1'))).toBeGreaterThan(5_000); // the default lockTtl, 10 s
    expect(await a.cache.get('stock:1')).toBeUndefined();
    expect(await b.cache.get('stock:1')).toBeUndefined();

    const fromB = timed(() => Promise.all(Array.from({ length: 100 }, () => b.stocks.stock(1))));
    const [resultsA, { value: resultsB, ms }] = await Promise.all([Promise.all(fromA), fromB]);
    expect(new Set([...resultsA, ...resultsB])).toEqual(new Set(['stock 1 from A']));
    expect(resultsB).toHaveLength(100);
    expect([a.stocks.runs.stock, b.stocks.runs.stock]).toEqual([1, 0]);
    // B was woken by A's release, not by lockWait (5 s).
    expect(ms).toBeLessThan(2_500);
    expect(b.stats('stock')).toMatchObject({ hits: 100, misses: 0, stale: 0 });
    expect(a.stats('stock')).toMatchObject({ hits: 0, misses: 100 });
    expect(await kindOf('stock:1')).toBe(ENTRY_KIND);
    expect(await b.cache.get('stock:1')).toBe('stock 1 from A');
  });

  it('called on both apps at the same moment, the method runs once in all', async () => {
    const calls = Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).stocks.stock(2));
    const results = await Promise.all(calls);
    expect(a.stocks.runs.stock + b.stocks.runs.stock).toBe(1);
    const [holder, waiter] = a.stocks.runs.stock === 1 ? [a, b] : [b, a];
    expect(new Set(results)).toEqual(new Set([`stock 2 from ${holder.stocks.label}`]));
    expect(holder.stats('stock')).toMatchObject({ misses: 100, hits: 0 });
    expect(waiter.stats('stock')).toMatchObject({ misses: 0, hits: 100 });
  });

  it("lock: false: each app runs the method once (single-flight) and only the holder's value is stored", async () => {
    a.stocks.delayMs = 600;
    b.stocks.delayMs = 50;
    const fromA = Promise.all(Array.from({ length: 100 }, () => a.stocks.unlocked(1)));
    await waitFor('A to take the lease', () => a.stocks.runs.unlocked === 1);

    const resultsB = await Promise.all(Array.from({ length: 100 }, () => b.stocks.unlocked(1)));
    expect(new Set(resultsB)).toEqual(new Set(['unlocked 1 from B'])); // B did not wait
    expect(b.stocks.runs.unlocked).toBe(1);
    expect(b.stats('unlocked')).toMatchObject({ misses: 100, hits: 0 });
    // B's value was not written: the key still holds A's lease.
    expect(await kindOf('unlocked:1')).toBe(LEASE_KIND);
    expect(await b.cache.get('unlocked:1')).toBeUndefined();

    expect(new Set(await fromA)).toEqual(new Set(['unlocked 1 from A']));
    expect(a.stocks.runs.unlocked).toBe(1);
    expect(await a.cache.get('unlocked:1')).toBe('unlocked 1 from A');
    expect(await b.cache.get('unlocked:1')).toBe('unlocked 1 from A');
    expect(await b.stocks.unlocked(1)).toBe('unlocked 1 from A');
    expect(b.stats('unlocked')).toMatchObject({ misses: 100, hits: 1 });
  });

  it("past lockWait a waiter runs the method itself, returns its own value and does not overwrite A's", async () => {
    a.stocks.delayMs = 1_200;
    b.stocks.delayMs = 50;
    const fromA = a.stocks.impatient(1);
    await waitFor('A to take the lease', () => a.stocks.runs.impatient === 1);

    const { value, ms } = await timed(() => Promise.all(Array.from({ length: 10 }, () => b.stocks.impatient(1))));
    expect(new Set(value)).toEqual(new Set(['impatient 1 from B']));
    expect(ms).toBeGreaterThanOrEqual(100 - 5); // waited lockWait first
    expect(ms).toBeLessThan(900); // far below A's 1.2 s load
    expect(b.stocks.runs.impatient).toBe(1);
    expect(b.stats('impatient')).toMatchObject({ misses: 10, hits: 0 });
    expect(await kindOf('impatient:1')).toBe(LEASE_KIND);
    expect(await b.cache.get('impatient:1')).toBeUndefined();

    expect(await fromA).toBe('impatient 1 from A');
    expect(await b.cache.get('impatient:1')).toBe('impatient 1 from A');
    expect(await b.stocks.impatient(1)).toBe('impatient 1 from A');
    expect(b.stocks.runs.impatient).toBe(1);
  });

  it("a dead holder's lease (a placeholder with PX 500 ms) delays callers until it expires; then one loads", async () => {
    const pxMs = 500;
    const deadline = (await redisNow(redis)) + pxMs;
    await redis.set(key('stock:7'), leasePlaceholder(randomBytes(8), deadline), 'PX', pxMs);
    expect(await a.cache.get('stock:7')).toBeUndefined();

    const { value, ms } = await timed(() => Promise.all([a.stocks.stock(7), b.stocks.stock(7), a.stocks.stock(7)]));
    expect(ms).toBeGreaterThanOrEqual(pxMs - 150);
    expect(ms).toBeLessThan(pxMs + 300 + 1_500); // the lease's end plus one load; far below lockWait (5 s)
    expect(a.stocks.runs.stock + b.stocks.runs.stock).toBe(1);
    expect(new Set(value).size).toBe(1);
    expect(await kindOf('stock:7')).toBe(ENTRY_KIND);
    expect(await a.cache.get('stock:7')).toBe(value[0]);
    expect(await redis.pttl(key('stock:7'))).toBeGreaterThan(50_000); // the method's 60 s TTL
  });

  it('a holder that dies mid-load (its app closed) delays the others at most lockTtl', async () => {
    const c = await node('C');
    extra.push(c.app);
    c.stocks.delayMs = 1_200;
    const fromC = c.stocks.shortLease(1);
    await waitFor('C to take the lease', () => c.stocks.runs.shortLease === 1);
    await c.app.close(); // C never completes its lease

    const { value, ms } = await timed(() => a.stocks.shortLease(1));
    expect(value).toBe('shortLease 1 from A');
    expect(ms).toBeLessThan(500 + 300 + 1_500); // lockTtl 500 ms plus A's own 300 ms load
    expect(await fromC).toBe('shortLease 1 from C'); // C's caller still gets C's value
    expect(await a.cache.get('short-lease:1')).toBe('shortLease 1 from A'); // C wrote nothing
  });
});

describe('lease option validation at bootstrap', () => {
  const base = (): RedisCacheModuleOptions => ({
    redis: testRedisConnection(),
    namespace: uniqueNamespace('lease-opts'),
  });

  async function initErrorOf(options: RedisCacheModuleOptions, providers: unknown[] = []): Promise<string> {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheModule.forRoot(options)],
      providers: providers as never[],
    }).compile();
    return initError(moduleRef.createNestApplication({ logger: false }));
  }

  function catalogWith(options: Record<string, unknown>) {
    @Injectable()
    class CatalogService {
      @Cacheable({ key: 'catalog', ...(options as CacheableOptions) })
      async load(): Promise<number> {
        return 1;
      }
    }
    return CatalogService;
  }

  it.each([
    ['lockTtl', 0],
    ['lockTtl', -1],
    ['lockTtl', 'soon'],
    ['lockWait', -1],
    ['lockWait', Infinity],
    ['lockWait', '5 minutes'],
    ['earlyRefresh', -1],
    ['earlyRefresh', 'yes'],
    ['earlyRefresh', NaN],
    ['staleWhileRevalidate', -1],
    ['staleWhileRevalidate', 'a while'],
    ['grace', -5],
    ['grace', Infinity],
    ['timeout', 0],
    ['timeout', -100],
    ['timeout', '1x'],
    ['lock', 'yes'],
  ])('@Cacheable %s %p fails app.init() naming Class.method and the option', async (option, value) => {
    const message = await initErrorOf(base(), [catalogWith({ [option]: value })]);
    expect(message).toContain(`CatalogService.load @Cacheable: ${option}`);
  });

  it.each([
    ['lock', 'yes'],
    ['lock', 1],
    ['lockTtl', 0],
    ['lockTtl', -2],
    ['lockTtl', 'forever'],
    ['lockWait', -1],
    ['lockWait', 'never'],
  ])('module %s %p fails app.init() naming the option', async (option, value) => {
    const message = await initErrorOf({ ...base(), [option]: value });
    expect(message).toMatch(new RegExp(`\\b${option} must be`));
  });

  it('valid lease options boot: durations, lockWait 0, earlyRefresh true, module defaults', async () => {
    const app = await createTestApp({
      providers: [catalogWith({ lockTtl: '2s', lockWait: 0, earlyRefresh: true, grace: '1h', timeout: '250ms' })],
      cache: { lock: false, lockTtl: 30, lockWait: '1s' },
    });
    await app.close();
  });

  it('CacheService.getOrSet rejects bad load options with the same messages', async () => {
    const app = await createTestApp({});
    try {
      const cache = app.get(CacheService);
      await expect(cache.getOrSet('k', async () => 1, { grace: -1 })).rejects.toThrow(
        /CacheService\.getOrSet: grace must be/,
      );
      await expect(cache.getOrSet('k', async () => 1, { lockWait: 'x' as never })).rejects.toBeInstanceOf(
        RedisCacheConfigError,
      );
    } finally {
      await app.close();
    }
  });
});
