// CacheService: get / set / del / getOrSet / clear / reclaim / client, with logical keys under the namespace.
// reclaim() is watched with MONITOR on a second connection (one per primary on a Cluster) to prove it
// uses SCAN + UNLINK, never KEYS.
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { CacheService, RedisCacheConfigError } from 'nestjs-redis-cache';
import { notAsAclUser } from '../support/acl-user.js';
import { watchCommands } from '../support/monitor.js';
import { createTestApp, rawRedis, testTopology, uniqueNamespace } from '../support/test-app.js';
import { delEach, holdsValue, scanEntryKeys, scanKeys, scanValueKeys, setMany } from '../support/redis-keys.js';

describe('CacheService', () => {
  let app: INestApplication;
  let cache: CacheService;
  let ns: string;
  const redis = rawRedis();
  const has = (key: string) => holdsValue(redis, `${ns}:${key}`);

  beforeEach(async () => {
    ns = uniqueNamespace('svc');
    app = await createTestApp({ cache: { namespace: ns } });
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  it('a key that is not a string is refused with a RedisCacheConfigError naming the method, running or not', async () => {
    const calls: Array<[string, (service: CacheService) => Promise<unknown>]> = [
      ['CacheService.get', (service) => service.get(42 as never)],
      ['CacheService.set', (service) => service.set(undefined as never, 1)],
      ['CacheService.del', (service) => service.del('fine', { id: 1 } as never)],
      ['CacheService.getOrSet', (service) => service.getOrSet(7 as never, () => Promise.resolve(1))],
      ['CacheService.getMany', (service) => service.getMany([1] as never)],
    ];
    const closed = await createTestApp({ cache: { namespace: ns } });
    await closed.close();
    for (const service of [cache, closed.get(CacheService)]) {
      for (const [where, call] of calls) {
        await expect(call(service)).rejects.toThrow(RedisCacheConfigError);
        await expect(call(service)).rejects.toThrow(`${where}: `);
      }
    }
    expect(await scanValueKeys(redis, `${ns}:*`)).toEqual([]);
  });

  describe('get / set / del', () => {
    it('get of an absent key is undefined', async () => {
      expect(await cache.get('missing')).toBeUndefined();
    });

    it('set stores under `${namespace}:${key}` and get returns a deep-equal value (Date, BigInt, Map, Set, Buffer)', async () => {
      const value = {
        at: new Date('2024-05-01T10:00:00.000Z'),
        big: 2n ** 70n,
        map: new Map<string, unknown>([['a', new Set([1, 2])]]),
        bytes: Buffer.from([0, 1, 2, 255]),
        u8: new Uint8Array([9, 8]),
        nested: { list: [1, 'two', null, { deep: true }] },
      };
      await cache.set('rich', value);
      expect(await has('rich')).toBe(true);
      expect(await cache.get('rich')).toEqual(value);
    });

    it('stores falsy values and null as found values', async () => {
      await cache.set('zero', 0);
      await cache.set('empty', '');
      await cache.set('no', false);
      await cache.set('nil', null);
      expect(await cache.get('zero')).toBe(0);
      expect(await cache.get('empty')).toBe('');
      expect(await cache.get('no')).toBe(false);
      expect(await cache.get('nil')).toBeNull();
    });

    it('set overwrites', async () => {
      await cache.set('k', 1);
      await cache.set('k', 2);
      expect(await cache.get('k')).toBe(2);
    });

    it('del removes the given keys and resolves to how many existed', async () => {
      await cache.set('a', 1);
      await cache.set('b', 2);
      await cache.set('c', 3);
      expect(await cache.del('a')).toBe(1);
      expect(await cache.del('a')).toBe(0);
      expect(await cache.del('b', 'c', 'nope')).toBe(2);
      expect(await cache.del()).toBe(0);
      expect(await scanValueKeys(redis, `${ns}:*`)).toEqual([]);
    });

    it('del does not touch the same logical key in another namespace', async () => {
      await redis.set(`${ns}-other:a`, 'x', 'PX', 60_000);
      await cache.set('a', 1);
      await cache.del('a');
      expect(await redis.exists(`${ns}-other:a`)).toBe(1);
      await redis.del(`${ns}-other:a`);
    });
  });

  describe('getOrSet', () => {
    it('runs the loader on a miss, stores its value, serves it afterwards', async () => {
      let loads = 0;
      const loader = async () => ({ n: ++loads });
      expect(await cache.getOrSet('g', loader)).toEqual({ n: 1 });
      expect(await cache.getOrSet('g', loader)).toEqual({ n: 1 });
      expect(loads).toBe(1);
      expect(await cache.get('g')).toEqual({ n: 1 });
      expect(cache.stats().byName['CacheService.getOrSet']).toMatchObject({ hits: 1, misses: 1 });
    });

    it('serves a value put there by set', async () => {
      await cache.set('g', 'from set');
      expect(await cache.getOrSet('g', async () => 'from loader')).toBe('from set');
    });

    it('a loader that rejects: the error reaches the caller, nothing is stored', async () => {
      const boom = new Error('boom');
      await expect(cache.getOrSet('bad', async () => Promise.reject(boom))).rejects.toBe(boom);
      expect(await has('bad')).toBe(false);
      expect(await cache.getOrSet('bad', async () => 'ok')).toBe('ok');
    });

    it('counts under the given name', async () => {
      await cache.getOrSet('n', async () => 1, { name: 'exchange-rates' });
      expect(cache.stats().byName['exchange-rates']).toMatchObject({ misses: 1 });
    });
  });

  describe('clear and reclaim', () => {
    it('clear(prefix) stops serving only the entries under that prefix (a literal, not a glob), deleting nothing', async () => {
      await cache.set('user:1', 1);
      await cache.set('user:2', 2);
      await cache.set('users:1', 3);
      await cache.set('post:1', 4);
      await cache.clear('user?');
      await cache.clear('user*');
      expect(await cache.get('user:1')).toBe(1);
      expect(await cache.clear('user:')).toBe(1);
      expect(await cache.get('user:1')).toBeUndefined();
      expect(await cache.get('user:2')).toBeUndefined();
      expect(await cache.get('users:1')).toBe(3);
      expect(await cache.get('post:1')).toBe(4);
      await cache.set('user:1', 5); // written after the clear: served
      expect(await cache.get('user:1')).toBe(5);
      expect(await cache.clear()).toBe(1);
      expect(await cache.get('post:1')).toBeUndefined();
    });

    it('reclaim(prefix) deletes only keys under that prefix (a literal, not a glob)', async () => {
      await cache.set('user:1', 1);
      await cache.set('user:2', 2);
      await cache.set('users:1', 3);
      await cache.set('post:1', 4);
      expect(await cache.reclaim('user?')).toBe(0);
      expect(await cache.reclaim('user*')).toBe(0);
      expect(await cache.reclaim('user:')).toBe(2);
      expect((await scanEntryKeys(redis, `${ns}:*`)).sort()).toEqual([`${ns}:post:1`, `${ns}:users:1`]);
    });

    it('reclaim() deletes everything under the namespace and nothing outside it', async () => {
      const outside = [`${ns}-other:a`, `${ns}x:a`, ns, `other:${ns}:a`];
      for (const key of outside) await redis.set(key, 'x', 'PX', 60_000);
      await cache.set('a', 1);
      await cache.set('b:c', 2);
      expect(await cache.reclaim()).toBe(2);
      expect(await scanValueKeys(redis, `${ns}:*`)).toEqual([]);
      for (const key of outside) expect(await redis.exists(key)).toBe(1);
      await delEach(redis, outside);
    });

    it('reclaims more keys than one SCAN batch (2,000)', async () => {
      const bulk = Array.from({ length: 2000 }, (_, i) => `${ns}:bulk:${i}`);
      await setMany(redis, bulk, 'x', 60_000);
      await cache.set('keep', 1);
      expect(await cache.reclaim('bulk:')).toBe(2000);
      expect(await scanKeys(redis, `${ns}:bulk:*`)).toEqual([]);
      expect(await cache.get('keep')).toBe(1);
    });

    it('uses SCAN and UNLINK, never KEYS (watched with MONITOR)', async () => {
      await setMany(
        redis,
        Array.from({ length: 1200 }, (_, i) => `${ns}:m:${i}`),
        'x',
        60_000,
      );

      const watch = await watchCommands(redis);
      try {
        expect(await cache.reclaim()).toBe(1200);
      } finally {
        await watch.stop();
      }
      const seen = watch.seen.map(({ args }) => args);
      const commands = seen.map((args) => args[0].toLowerCase());
      expect(commands).not.toContain('keys');
      const scans = seen.filter((args) => args[0].toLowerCase() === 'scan');
      expect(scans.length).toBeGreaterThanOrEqual(2);
      for (const scan of scans.filter((args) => args.includes(`${ns}:*`))) {
        expect(scan.map((arg) => arg.toLowerCase())).toEqual(expect.arrayContaining(['match', 'count']));
      }
      expect(scans.some((args) => args.includes(`${ns}:*`))).toBe(true);
      const unlinked = seen.filter((args) => args[0].toLowerCase() === 'unlink' && args[1]?.startsWith(`${ns}:m:`));
      expect(unlinked.reduce((total, args) => total + args.length - 1, 0)).toBe(1200);
      expect(seen.some((args) => args[0].toLowerCase() === 'del' && args[1]?.startsWith(`${ns}:`))).toBe(false);
    });
  });

  describe('client', () => {
    notAsAclUser("PING and HSET through the module's client")('is the ioredis client the module uses', async () => {
      expect(cache.client).toBeInstanceOf(testTopology() === 'cluster' ? Cluster : Redis);
      expect(await cache.client.ping()).toBe('PONG');
      await cache.set('via-service', 1);
      // native commands reach the same Redis
      expect(await cache.client.exists(`${ns}:via-service`)).toBe(1);
      await cache.client.hset(`${ns}:native-hash`, 'f', 'v');
      expect(await redis.hget(`${ns}:native-hash`, 'f')).toBe('v');
      await redis.del(`${ns}:native-hash`);
    });
  });
});
