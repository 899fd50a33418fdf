// grace and timeout: a value within `grace` past its TTL answers when the method throws (outcome
// 'stale', counted in `fallbacks`), or when the method exceeds `timeout` — the slow load then goes on
// in the background and its value is stored. Without such a value the caller gets the method's error,
// and `timeout` has no effect.
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService, type CacheNameStats } from 'nestjs-redis-cache';
import {
  freshUntilOf,
  redisNow,
  timed,
  waitFor,
  waitUntil,
  waitUntilStale,
  watchUnhandledRejections,
} from '../support/load-helpers.js';
import { LogRecorder } from '../support/fault-helpers.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { delay } from '../support/timing.js';

const GRACE_MS = 1_000;
const TIMEOUT_MS = 150;

@Injectable()
class QuoteService {
  runs = 0;
  fail = false;
  delayMs = 0;

  /** Runs that have finished (returned or thrown). */
  settled = 0;

  private async load(id: number): Promise<string> {
    const run = ++this.runs;
    try {
      await delay(this.delayMs);
      if (this.fail) throw new Error(`quote ${id}: source down in run ${run}`);
      return `quote ${id} v${run}`;
    } finally {
      this.settled++;
    }
  }

  @Cacheable({ key: 'quote:{0}', ttl: '300ms', grace: 1 })
  async quote(id: number): Promise<string> {
    return this.load(id);
  }

  @Cacheable({ key: 'slow:{0}', ttl: '300ms', grace: '2s', timeout: TIMEOUT_MS })
  async slow(id: number): Promise<string> {
    return this.load(id);
  }

  @Cacheable({ key: 'unlocked:{0}', ttl: '300ms', grace: '2s', timeout: TIMEOUT_MS, lock: false })
  async unlocked(id: number): Promise<string> {
    return this.load(id);
  }

  @Cacheable({ key: 'impatient:{0}', ttl: '300ms', grace: '2s', timeout: TIMEOUT_MS, lockWait: 50 })
  async impatient(id: number): Promise<string> {
    return this.load(id);
  }
}

describe('grace and timeout', () => {
  const redis = rawRedis();
  let app: INestApplication;
  let quotes: QuoteService;
  let cache: CacheService;
  let ns: string;
  const key = (name: string) => `${ns}:${name}`;
  const stats = (name: string): CacheNameStats => cache.stats().byName[`QuoteService.${name}`];

  beforeEach(async () => {
    ns = uniqueNamespace('grace');
    app = await createTestApp({ providers: [QuoteService], cache: { namespace: ns, jitter: 0 } });
    quotes = app.get(QuoteService);
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  describe('grace', () => {
    it('the method throws and a value within grace exists: that value answers (stale, a fallback)', async () => {
      expect(await quotes.quote(1)).toBe('quote 1 v1');
      expect(await redis.pttl(key('quote:1'))).toBeGreaterThan(300); // kept ttl + grace
      await waitUntilStale(redis, key('quote:1'));
      quotes.fail = true;
      expect(await quotes.quote(1)).toBe('quote 1 v1');
      expect(quotes.runs).toBe(2); // the method did run, and threw
      expect(stats('quote')).toMatchObject({ misses: 1, stale: 1, fallbacks: 1, hits: 0, errors: 0 });
      // Its failed load released the lease and left the entry: the next call falls back again.
      expect(await quotes.quote(1)).toBe('quote 1 v1');
      expect(quotes.runs).toBe(3);
      expect(stats('quote')).toMatchObject({ stale: 2, fallbacks: 2 });
      // And once the method answers again, its value is stored.
      quotes.fail = false;
      expect(await quotes.quote(1)).toBe('quote 1 v4');
      expect(await cache.get('quote:1')).toBe('quote 1 v4');
      expect(stats('quote')).toMatchObject({ misses: 2, stale: 2, fallbacks: 2 });
    });

    it('concurrent callers sharing one failed load all get the grace value, each counted as a fallback', async () => {
      expect(await quotes.quote(5)).toBe('quote 5 v1');
      await waitUntilStale(redis, key('quote:5'));
      quotes.fail = true;
      const shared = await Promise.all(Array.from({ length: 10 }, () => quotes.quote(5)));
      expect(new Set(shared)).toEqual(new Set(['quote 5 v1']));
      expect(quotes.runs).toBe(2); // one load for the 10 callers (single-flight)
      // `fallbacks` counts calls served a grace value, "also counted in stale" (cache-stats.interface.ts).
      expect(stats('quote')).toMatchObject({ stale: 10, fallbacks: 10 });
    });

    it('never cached: the caller gets the method error', async () => {
      quotes.fail = true;
      await expect(quotes.quote(2)).rejects.toThrow('quote 2: source down in run 1');
      expect(stats('quote')).toMatchObject({ misses: 1, stale: 0, fallbacks: 0 });
      expect(await redis.exists(key('quote:2'))).toBe(0); // nothing stored, the lease released
    });

    it("past grace (the entry still in Redis, kept by a longer writer's grace): the caller gets the error", async () => {
      // Written with a 10 s grace, so the key outlives the method's own 1 s grace window.
      await cache.set('quote:3', 'quote 3 set', { ttl: '300ms', grace: 10 });
      const freshUntil = await waitUntilStale(redis, key('quote:3'));
      quotes.fail = true;
      expect(await quotes.quote(3)).toBe('quote 3 set'); // within the method's grace
      expect(stats('quote')).toMatchObject({ stale: 1, fallbacks: 1 });

      await waitUntil(freshUntil + GRACE_MS);
      await expect(quotes.quote(3)).rejects.toThrow('quote 3: source down in run 2');
      expect(await redis.exists(key('quote:3'))).toBe(1);
      expect(stats('quote')).toMatchObject({ stale: 1, fallbacks: 1, misses: 1 });
    });

    it('past grace (the key expired): the caller gets the error', async () => {
      expect(await quotes.quote(4)).toBe('quote 4 v1');
      await waitFor('the key to expire', async () => (await redis.exists(key('quote:4'))) === 0, 5_000, 25);
      quotes.fail = true;
      await expect(quotes.quote(4)).rejects.toThrow('quote 4: source down in run 2');
      expect(stats('quote')).toMatchObject({ misses: 2, stale: 0, fallbacks: 0 });
    });
  });

  describe('timeout', () => {
    it('a slower method with a grace value: that value answers at about timeout, the load lands later', async () => {
      expect(await quotes.slow(1)).toBe('quote 1 v1');
      await waitUntilStale(redis, key('slow:1'));
      quotes.delayMs = 800;

      const { value, ms } = await timed(() => quotes.slow(1));
      expect(value).toBe('quote 1 v1');
      expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 10);
      expect(ms).toBeLessThan(600); // far below the method's 800 ms
      expect(stats('slow')).toMatchObject({ misses: 1, stale: 1, fallbacks: 1, refreshes: 1 });

      // The slow load goes on and stores its value; the next call is a hit with it.
      await waitFor('the slow load to land', async () => (await cache.get('slow:1')) === 'quote 1 v2', 5_000);
      expect(quotes.runs).toBe(2);
      expect(await quotes.slow(1)).toBe('quote 1 v2');
      expect(stats('slow')).toMatchObject({ hits: 1, misses: 1, stale: 1, fallbacks: 1, refreshFailures: 0 });
    });

    it('callers arriving while the slow load runs get the grace value too, and the method runs once', async () => {
      expect(await quotes.slow(2)).toBe('quote 2 v1');
      await waitUntilStale(redis, key('slow:2'));
      quotes.delayMs = 800;
      expect(await quotes.slow(2)).toBe('quote 2 v1'); // starts the slow load, answers at timeout
      const { value, ms } = await timed(() => Promise.all(Array.from({ length: 10 }, () => quotes.slow(2))));
      expect(new Set(value)).toEqual(new Set(['quote 2 v1']));
      expect(ms).toBeLessThan(600);
      expect(quotes.runs).toBe(2);
      await waitFor('the slow load to land', async () => (await cache.get('slow:2')) === 'quote 2 v2', 5_000);
      expect(quotes.runs).toBe(2);
    });

    it('a slow load past timeout that then throws is counted as a failed refresh, logged once; the grace value stays', async () => {
      const unhandled = watchUnhandledRejections();
      const logs = new LogRecorder();
      await app.close();
      app = await createTestApp({ providers: [QuoteService], cache: { namespace: ns, jitter: 0 }, logger: logs });
      quotes = app.get(QuoteService);
      cache = app.get(CacheService);
      try {
        expect(await quotes.slow(3)).toBe('quote 3 v1');
        const freshUntil = await waitUntilStale(redis, key('slow:3'));
        quotes.delayMs = 400;
        quotes.fail = true;
        expect(await quotes.slow(3)).toBe('quote 3 v1');
        await waitFor('the failed refresh', () => stats('slow').refreshFailures === 1);
        expect(stats('slow')).toMatchObject({ refreshes: 1, refreshFailures: 1, fallbacks: 1 });
        expect(await freshUntilOf(redis, key('slow:3'))).toBe(freshUntil); // the old entry, untouched
        expect(await quotes.slow(3)).toBe('quote 3 v1');
        await waitFor('the second failed refresh', () => stats('slow').refreshFailures === 2);
        const failures = logs.cacheLines('warn').filter((line) => line.includes('background refresh failed'));
        expect(failures).toHaveLength(1);
        expect(failures[0]).toContain('QuoteService.slow');
        expect(failures[0]).toContain('source down in run 2');
        await delay(20);
        expect(unhandled.rejections).toEqual([]);
      } finally {
        unhandled.stop();
      }
    });

    it('without a grace value timeout has no effect: the caller waits for the method', async () => {
      quotes.delayMs = 500;
      const { value, ms } = await timed(() => quotes.slow(4));
      expect(value).toBe('quote 4 v1');
      expect(ms).toBeGreaterThanOrEqual(480);
      expect(stats('slow')).toMatchObject({ misses: 1, stale: 0, fallbacks: 0, refreshes: 0 });
      expect(await cache.get('slow:4')).toBe('quote 4 v1');

      // Nor does it when the method throws late: the error reaches the caller.
      quotes.fail = true;
      await expect(quotes.slow(5)).rejects.toThrow('quote 5: source down in run 2');
    });

    /**
     * Another process holds the lease of the stale entry (forged here: a token and deadline written
     * into the entry's header, as ACQUIRE_LEASE does), so this caller runs the method itself without
     * writing: with `lock: false` at once, otherwise after `lockWait`. A grace value exists and the
     * method is slower than `timeout`, so the grace value should answer at about `timeout`.
     */
    it.each([['unlocked' as const], ['impatient' as const]])(
      '%s (lock: false / lockWait < timeout): a caller loading without the lease answers with the grace value at timeout',
      async (method) => {
        expect(await quotes[method](1)).toBe('quote 1 v1');
        await waitUntilStale(redis, key(`${method}:1`));
        const leaseEnd = Buffer.alloc(8);
        leaseEnd.writeDoubleBE((await redisNow(redis)) + 5_000);
        await redis.setrange(key(`${method}:1`), 2, Buffer.concat([randomBytes(8), leaseEnd]));
        quotes.delayMs = 800;
        try {
          const { value, ms } = await timed(() => quotes[method](1));
          expect(value).toBe('quote 1 v1');
          expect(ms).toBeLessThan(600); // far below the method's 800 ms
          expect(stats(method)).toMatchObject({ stale: 1, fallbacks: 1 });
        } finally {
          await waitFor('the load to finish', () => quotes.settled === quotes.runs, 3_000);
        }
      },
    );
  });
});
