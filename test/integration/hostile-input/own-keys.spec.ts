// Hostile input and lost state, item 2: users' keys cannot address the module's own keys, and no
// script overwrites a key that is not a cache entry of this package.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CachePut, CacheService } from 'nestjs-redis-cache';
import { randomBytes } from 'node:crypto';
import { engineOf } from '../../support/engine-of.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../../support/test-app.js';
import { bookkeeping, scanKeys } from '../../support/redis-keys.js';

@Injectable()
class Echo {
  loads = 0;

  @Cacheable({ key: '{0}' })
  async byKey(key: string): Promise<string> {
    this.loads++;
    return `value of ${key}`;
  }

  @Cacheable({ key: (key: string) => key })
  async byFunction(key: string): Promise<string> {
    this.loads++;
    return `value of ${key}`;
  }

  @CachePut({ key: '{0}' })
  async put(key: string, value: string): Promise<string> {
    return value;
  }
}

describe("users' keys and the module's own keys", () => {
  const redis = rawRedis();
  let app: INestApplication;
  let ns: string;

  beforeEach(async () => {
    ns = uniqueNamespace('own');
    app = await createTestApp({ providers: [Echo], cache: { namespace: ns } });
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  /** The module's own keys with their types and values, to compare before and after. */
  async function ownKeys(): Promise<Record<string, string>> {
    const snapshot: Record<string, string> = {};
    for (const key of await scanKeys(redis, `${ns}:@*`)) {
      const type = await redis.type(key);
      const value =
        type === 'zset'
          ? (await redis.zrange(key, '0', '-1')).join(',')
          : type === 'string'
            ? await redis.get(key)
            : type;
      snapshot[key] = `${type}:${value}`;
    }
    return snapshot;
  }

  it('no argument, key function or CacheService key reaches a key of the module', async () => {
    const cache = app.get(CacheService);
    const echo = app.get(Echo);
    await cache.clear('x:'); // a marker besides the namespace's own
    await cache.invalidateTags('t');
    const keys = bookkeeping(ns);
    const before = await ownKeys();
    expect(Object.keys(before).sort()).toEqual([keys.epoch, keys.prefixes, keys.tag('t')].sort());
    // Every name a user could try: the keys' own text after the namespace, and the old scheme's `__`.
    const names = [...Object.keys(before).map((key) => key.slice(ns.length + 1)), '__prefixes', '__epoch', '__tag:t'];
    for (const name of names) {
      await echo.byKey(name);
      await echo.byFunction(name);
      await echo.put(name, 'overwritten?');
      await cache.set(name, 'overwritten?');
      await cache.getOrSet(name, async () => 'overwritten?');
      await cache.del(name);
    }
    expect(await ownKeys()).toEqual(before);
    // ...and the cache still works for those names, under keys of their own.
    expect(await echo.byKey('@x')).toBe('value of @x');
    const loads = echo.loads;
    expect(await echo.byKey('@x')).toBe('value of @x');
    expect(echo.loads).toBe(loads);
  });

  it('a script never overwrites a key that is not an entry of this package: plain strings and other types stay', async () => {
    const cache = app.get(CacheService);
    const engine = engineOf(app);
    await redis.set(`${ns}:plain`, 'somebody else', 'PX', 60_000);
    await redis.hset(`${ns}:hash`, 'field', 'value');
    await redis.pexpire(`${ns}:hash`, 60_000);
    // A write (`@CachePut`, `set`) is refused, and counted.
    await cache.set('plain', 'mine');
    await cache.set('hash', 'mine');
    expect(await redis.get(`${ns}:plain`)).toBe('somebody else');
    expect(await redis.hget(`${ns}:hash`, 'field')).toBe('value');
    expect(cache.stats().byName['CacheService'].errors).toBe(2);
    // A lease is refused too.
    const store = engine.store;
    expect(await store.acquireLease(`${ns}:plain`, randomBytes(8), 5_000, '')).toEqual({ status: 'foreign' });
    expect(await store.acquireLease(`${ns}:hash`, randomBytes(8), 5_000, '')).toEqual({ status: 'foreign' });
    expect(await store.write(`${ns}:plain`, Buffer.from('x'), 5_000, Number.MAX_SAFE_INTEGER)).toBe('foreign');
    expect(await redis.get(`${ns}:plain`)).toBe('somebody else');
    // A completion with a token it does not hold writes nothing either.
    await store.completeLease(`${ns}:plain`, randomBytes(8), Buffer.from('x'), 5_000, bookkeeping(ns).leaseChannel);
    expect(await redis.get(`${ns}:plain`)).toBe('somebody else');
  });
});
