// TTLs: every key the cache writes expires; TTLs come from the module default, a number of
// seconds, a duration string or a profile; jitter spreads them within [ttl, ttl * (1 + jitter)].
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CachePut, CacheService, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { scanEntryKeys, scanKeys } from '../support/redis-keys.js';
import { delay } from '../support/timing.js';

@Injectable()
class TtlService {
  runs = 0;
  @Cacheable({ key: 'default:{0}' })
  async byDefault(id: number): Promise<number | null | undefined> {
    this.runs++;
    return id === 0 ? null : id === -1 ? undefined : id;
  }
  @Cacheable({ key: 'seconds', ttl: 30 })
  async seconds(): Promise<number> {
    return 1;
  }
  @Cacheable({ key: 'ninety', ttl: '90s' })
  async ninety(): Promise<number> {
    return 1;
  }
  @Cacheable({ key: 'five-min', ttl: '5m' })
  async fiveMinutes(): Promise<number> {
    return 1;
  }
  @Cacheable({ key: 'profile', ttl: 'user_profile' })
  async profile(): Promise<number> {
    return 1;
  }
  @Cacheable({ key: 'short', ttl: '300ms' })
  async short(): Promise<number> {
    this.runs++;
    return this.runs;
  }
  @CachePut({ key: 'put:{0}', ttl: '2m' })
  async put(id: number): Promise<number> {
    return id;
  }
  @CachePut({ key: 'put-default:{0}' })
  async putDefault(id: number): Promise<number> {
    return id;
  }
}

describe('TTLs', () => {
  let app: INestApplication;
  let service: TtlService;
  let cache: CacheService;
  let ns: string;
  const redis = rawRedis();
  const pttl = (key: string) => redis.pttl(`${ns}:${key}`);

  async function start(options: RedisCacheModuleOptions): Promise<void> {
    ns = uniqueNamespace('ttl');
    app = await createTestApp({ providers: [TtlService], cache: { namespace: ns, ...options } });
    service = app.get(TtlService);
    cache = app.get(CacheService);
  }
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  /** Within [seconds * 1000, seconds * 1000 * (1 + jitter)], with 2 s of slack below for elapsed time. */
  async function expectTtl(key: string, seconds: number, jitter = 0): Promise<void> {
    const ms = await pttl(key);
    expect(ms).toBeGreaterThan(seconds * 1000 - 2000);
    expect(ms).toBeLessThanOrEqual(Math.ceil(seconds * 1000 * (1 + jitter)));
  }

  describe('without jitter', () => {
    beforeEach(() => start({ ttl: 120, jitter: 0, nullTtl: 7, ttlProfiles: { user_profile: '1d' } }));

    it('module default ttl', async () => {
      await service.byDefault(1);
      await expectTtl('default:1', 120);
    });

    it('ttl as seconds, as a duration string, and as a profile name', async () => {
      await service.seconds();
      await service.ninety();
      await service.fiveMinutes();
      await service.profile();
      await expectTtl('seconds', 30);
      await expectTtl('ninety', 90);
      await expectTtl('five-min', 300);
      await expectTtl('profile', 86_400);
    });

    it('nullTtl for null and undefined results', async () => {
      await service.byDefault(0);
      await service.byDefault(-1);
      await expectTtl('default:0', 7);
      await expectTtl('default:-1', 7);
    });

    it('@CachePut writes with a TTL (its own, or the default)', async () => {
      await service.put(1);
      await service.putDefault(1);
      await expectTtl('put:1', 120);
      await expectTtl('put-default:1', 120);
    });

    it('CacheService.set and getOrSet write with a TTL: default, seconds, duration, profile', async () => {
      await cache.set('a', 1);
      await cache.set('b', 1, { ttl: 45 });
      await cache.set('c', 1, { ttl: '5m' });
      await cache.set('d', 1, { ttl: 'user_profile' });
      await cache.getOrSet('e', async () => 1, { ttl: '90s' });
      await cache.getOrSet('f', async () => 1);
      await expectTtl('a', 120);
      await expectTtl('b', 45);
      await expectTtl('c', 300);
      await expectTtl('d', 86_400);
      await expectTtl('e', 90);
      await expectTtl('f', 120);
    });

    it('an entry expires after its TTL and the method runs again', async () => {
      expect(await service.short()).toBe(1);
      expect(await service.short()).toBe(1);
      const ttl = await pttl('short');
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
      while ((await redis.exists(`${ns}:short`)) === 1) await delay(25);
      expect(await service.short()).toBe(2);
    });

    it('without jitter, entries written together expire together', async () => {
      await Promise.all(Array.from({ length: 50 }, (_, i) => service.byDefault(i + 1)));
      const ttls = await Promise.all(Array.from({ length: 50 }, (_, i) => pttl(`default:${i + 1}`)));
      expect(Math.max(...ttls) - Math.min(...ttls)).toBeLessThan(1000);
    });

    it('every key written by the cache has a TTL', async () => {
      await service.byDefault(1);
      await service.byDefault(0);
      await service.put(2);
      await service.profile();
      await cache.set('x', { a: 1 });
      await cache.getOrSet('y', async () => null);
      expect(await scanEntryKeys(redis, `${ns}:*`)).toHaveLength(6);
      // The entries and the module's own keys alike (the epoch, and the prefix markers once read).
      const written = await scanKeys(redis, `${ns}:*`);
      expect(written.length).toBeGreaterThanOrEqual(7);
      for (const key of written) expect(await redis.pttl(key)).toBeGreaterThan(0);
    });
  });

  describe('with jitter', () => {
    beforeEach(() => start({ ttl: 100, jitter: 0.5, nullTtl: 10, ttlProfiles: { user_profile: '1d' } }));

    it('spreads TTLs uniformly within [ttl, ttl * (1 + jitter)]', async () => {
      const count = 200;
      // 50 at a time: a burst of 200 misses on a loaded machine can pass commandTimeout, and the
      // cache then skips writes, as it should (this is about TTLs, not bursts).
      for (let i = 0; i < count; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => service.byDefault(i + j + 1)));
      }
      const ttls = await Promise.all(Array.from({ length: count }, (_, i) => pttl(`default:${i + 1}`)));
      for (const ttl of ttls) {
        expect(ttl).toBeGreaterThan(100_000 - 2000);
        expect(ttl).toBeLessThanOrEqual(150_000);
      }
      expect(new Set(ttls).size).toBeGreaterThan(count * 0.9);
      // 200 uniform draws over a 50 s range: both halves of the range are used.
      expect(ttls.filter((ttl) => ttl < 125_000).length).toBeGreaterThan(count * 0.25);
      expect(ttls.filter((ttl) => ttl >= 125_000).length).toBeGreaterThan(count * 0.25);
      expect(Math.max(...ttls) - Math.min(...ttls)).toBeGreaterThan(30_000);
    });

    it('applies jitter to nullTtl and to CacheService.set as well', async () => {
      await service.byDefault(0);
      await expectTtl('default:0', 10, 0.5);
      await Promise.all(Array.from({ length: 30 }, (_, i) => cache.set(`s:${i}`, i)));
      const ttls = await Promise.all(Array.from({ length: 30 }, (_, i) => pttl(`s:${i}`)));
      expect(new Set(ttls).size).toBeGreaterThan(20);
      for (const ttl of ttls) expect(ttl).toBeLessThanOrEqual(150_000);
    });
  });
});
