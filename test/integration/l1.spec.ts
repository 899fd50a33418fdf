// The in-process tier (L1): opt-in `l1: { max, ttl }` on the module and per method. A value read
// from Redis is kept in memory and served without a round trip; every write, eviction, tag
// invalidation, prefix clear or reclaim made by any instance reaches every other one over Redis
// pub/sub and drops its copy. Two applications in this process play two instances (separate
// processes: l1-processes.spec.ts). A key deleted behind the module's back (raw DEL, nothing
// announced) shows where a value came from: L1 still serves it, Redis would not.
import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheEvict, CachePut, CacheService, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { withNewSubscriber } from '../support/redis-clients.js';
import { waitFor } from '../support/load-helpers.js';
import { newTestClient, standaloneOnly } from '../support/redis-topology.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { bookkeeping } from '../support/redis-keys.js';
import { delay } from '../support/timing.js';

@Injectable()
class ProductService {
  loads = 0;
  version = 1;

  @Cacheable({ key: 'product:{0}', ttl: 60, tags: (_p: unknown, id: number) => [`product:${id}`] })
  async product(id: number): Promise<string> {
    this.loads++;
    return `product ${id} v${this.version}`;
  }

  @CachePut({ key: 'product:{0}', ttl: 60, tags: (_p: unknown, id: number) => [`product:${id}`] })
  async rename(id: number, version: number): Promise<string> {
    this.version = version;
    return `product ${id} v${version}`;
  }

  @CacheEvict({ key: 'product:{0}' })
  async remove(_id: number): Promise<void> {}

  @Cacheable({ key: 'short:{0}', ttl: 1 })
  async short(id: number): Promise<string> {
    this.loads++;
    return `short ${id} v${this.version}`;
  }

  @Cacheable({ key: 'own:{0}', ttl: 60, l1: { max: 2, ttl: 60 } })
  async own(id: number): Promise<string> {
    this.loads++;
    return `own ${id} v${this.version}`;
  }

  @Cacheable({ key: 'never:{0}', ttl: 60, l1: false })
  async neverInMemory(id: number): Promise<string> {
    this.loads++;
    return `never ${id} v${this.version}`;
  }
}

/** A worker that only writes: no method of it keeps an L1. */
@Injectable()
class ProductWriter {
  @CachePut({ key: 'product:{0}', ttl: 60, tags: (_p: unknown, id: number) => [`product:${id}`] })
  async rename(id: number, version: number): Promise<string> {
    return `product ${id} v${version}`;
  }
}

describe('in-process tier (L1)', () => {
  // An instance keeps nothing in L1 until a second after it said it has one (l1-presence.ts): every
  // app started here waits for that.
  jest.setTimeout(20_000);
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let namespace: string;

  async function start(cache: RedisCacheModuleOptions = { l1: { max: 1_000, ttl: 60 } }) {
    const app = await createTestApp({ providers: [ProductService], cache: { namespace, ...cache } });
    apps.push(app);
    const service = app.get(CacheService);
    // Served from memory only once the subscription is confirmed.
    await waitFor('L1 to serve', () => service.status().l1 === 'serving', 5_000);
    return { app, products: app.get(ProductService), cache: service };
  }

  /**
   * Calls until an answer comes from memory: a miss loads and stores, a hit from Redis is kept, the
   * next one is served by L1.
   */
  async function warm(instance: { cache: CacheService }, name: string, call: () => Promise<unknown>) {
    const before = instance.cache.stats().byName[name]?.l1Hits ?? 0;
    for (let i = 0; i < 3; i++) await call();
    expect(instance.cache.stats().byName[name]?.l1Hits ?? 0).toBeGreaterThan(before);
  }

  async function startWriter() {
    const app = await createTestApp({ providers: [ProductWriter], cache: { namespace } });
    apps.push(app);
    return app.get(ProductWriter);
  }

  const key = (logical: string) => `${namespace}:${logical}`;

  beforeEach(() => {
    namespace = uniqueNamespace('l1');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.disconnect());

  it('serves a value read from Redis from memory, without asking Redis again', async () => {
    const a = await start();
    expect(await a.products.product(1)).toBe('product 1 v1'); // miss: loaded and stored
    expect(await a.products.product(1)).toBe('product 1 v1'); // hit from Redis, kept in L1
    expect(a.cache.stats().byName['ProductService.product']).toMatchObject({ hits: 1, misses: 1, l1Hits: 0 });
    // Deleted behind the module's back: only memory still has it.
    await redis.del(key('product:1'));
    expect(await a.products.product(1)).toBe('product 1 v1');
    expect(a.cache.stats().byName['ProductService.product']).toMatchObject({ hits: 2, misses: 1, l1Hits: 1 });
    expect(a.products.loads).toBe(1);
    expect(a.cache.stats().l1Hits).toBe(1);
  });

  it('never serves a value past its own TTL, whatever the L1 ttl', async () => {
    const a = await start();
    await warm(a, 'ProductService.short', () => a.products.short(1));
    a.products.version = 2;
    await delay(1_150); // the value's TTL is 1 s (jitter adds at most 10%), L1's 60 s
    expect(await a.products.short(1)).toBe('short 1 v2');
  });

  it('keeps values no longer than l1.ttl', async () => {
    const a = await start({ l1: { max: 100, ttl: '300ms' } });
    await warm(a, 'ProductService.product', () => a.products.product(1));
    await redis.del(key('product:1'));
    a.products.version = 2;
    await delay(350);
    expect(await a.products.product(1)).toBe('product 1 v2');
  });

  it('a @CachePut through one instance drops the copy of every other one', async () => {
    const a = await start();
    const b = await start();
    await warm(b, 'ProductService.product', () => b.products.product(1));
    expect(await a.products.rename(1, 2)).toBe('product 1 v2');
    // The put resolved once Redis had the value and the message; the message reaches B right after.
    await waitFor('B to read the new value', async () => (await b.products.product(1)) === 'product 1 v2', 2_000, 1);
    expect(b.products.loads).toBe(1); // B read the new value from Redis, it did not load it
    // And keeps the new value in memory again.
    await warm(b, 'ProductService.product', () => b.products.product(1));
  });

  it('the writing instance drops its own copy at once', async () => {
    const a = await start();
    await warm(a, 'ProductService.product', () => a.products.product(1));
    await a.products.rename(1, 2);
    expect(await a.products.product(1)).toBe('product 1 v2');
    await a.cache.set('product:1', 'set by hand');
    expect(await a.products.product(1)).toBe('set by hand');
    await a.products.remove(1);
    a.products.version = 3;
    expect(await a.products.product(1)).toBe('product 1 v3');
  });

  it('an eviction, a tag invalidation, a prefix clear and a reclaim elsewhere all reach an instance', async () => {
    const a = await start();
    const b = await start();
    const changes: Array<[string, () => Promise<unknown>]> = [
      ['@CacheEvict', () => a.products.remove(1)],
      ['CacheService.del', () => a.cache.del('product:1')],
      ['invalidateTags', () => a.cache.invalidateTags('product:1')],
      ['clear(prefix)', () => a.cache.clear('product:')],
      ['reclaim(prefix)', () => a.cache.reclaim('product:')],
    ];
    for (const [what, change] of changes) {
      await warm(b, 'ProductService.product', () => b.products.product(1));
      const version = ++a.products.version;
      b.products.version = version;
      await change();
      await waitFor(
        `${what} through A to reach B's L1`,
        async () => (await b.products.product(1)) === `product 1 v${version}`,
        2_000,
        1,
      );
    }
  });

  it('an instance without L1 still announces its writes to those with one', async () => {
    const b = await start();
    const writer = await startWriter();
    await warm(b, 'ProductService.product', () => b.products.product(1));
    await writer.rename(1, 2);
    await waitFor('B to read the new value', async () => (await b.products.product(1)) === 'product 1 v2', 2_000, 1);
  });

  it('a namespace where no instance keeps an L1 announces nothing, until one does', async () => {
    const listener = newTestClient();
    const announced: string[] = [];
    listener.on('message', (_channel: string, message: string) => announced.push(message));
    await listener.subscribe(bookkeeping(namespace).l1Channel);
    try {
      const writer = await startWriter();
      // The first writes are announced until the writer has asked whether any instance keeps an L1
      // (a few ms): then one is not. An announcement can take tens of ms to arrive from a loaded
      // Cluster, so a write counts as unannounced only after 200 ms of silence.
      let version = 0;
      await waitFor(
        'a write that is not announced',
        async () => {
          const before = announced.length;
          await writer.rename(1, ++version);
          await delay(200);
          return announced.length === before;
        },
        10_000,
      );
      const quiet = announced.length;
      for (let i = 0; i < 10; i++) await writer.rename(1, ++version);
      await delay(200);
      expect(announced.length).toBe(quiet);
      // An instance with an L1 starts (it keeps nothing until every writer announces): announced again.
      const b = await start();
      await warm(b, 'ProductService.product', () => b.products.product(1));
      await writer.rename(1, ++version);
      await waitFor('the announcement', () => announced.length > quiet, 2_000);
      await waitFor(
        'B to read the new value',
        async () => (await b.products.product(1)) === `product 1 v${version}`,
        2_000,
        1,
      );
    } finally {
      listener.disconnect();
    }
  });

  it('a method with its own memory keeps its max; one with l1: false keeps nothing', async () => {
    const a = await start({}); // no module l1: only `own` has one
    for (const id of [1, 2, 3]) await warm(a, 'ProductService.own', () => a.products.own(id));
    // max 2: id 1 was pushed out, 2 and 3 are in memory.
    for (const id of [1, 2, 3]) await redis.del(key(`own:${id}`));
    a.products.version = 2;
    expect(await a.products.own(3)).toBe('own 3 v1');
    expect(await a.products.own(2)).toBe('own 2 v1');
    expect(await a.products.own(1)).toBe('own 1 v2');

    const withModuleL1 = await start();
    const p = withModuleL1.products;
    await p.neverInMemory(1);
    await p.neverInMemory(1);
    await p.neverInMemory(1);
    expect(withModuleL1.cache.stats().byName['ProductService.neverInMemory']).toMatchObject({ hits: 2, l1Hits: 0 });
  });

  it('getOrSet uses the module L1 unless told not to', async () => {
    const a = await start();
    const load = async () => 'computed';
    await a.cache.getOrSet('report', load);
    await a.cache.getOrSet('report', load); // from Redis, kept
    await redis.del(key('report'));
    expect(await a.cache.getOrSet('report', async () => 'again')).toBe('computed');
    expect(await a.cache.getOrSet('report', async () => 'again', { l1: false })).toBe('again');
    expect(a.cache.stats().byName['CacheService.getOrSet'].l1Hits).toBe(1);
  });

  // CLIENT KILL of one subscriber socket is a one-server mechanism; on a Cluster a node leaving the
  // pool is the same moment (namespace-subscriber.ts).
  standaloneOnly('kills one subscriber connection (CLIENT KILL ID)')(
    'after a lost subscription an instance serves nothing it kept before',
    async () => {
      const a = await start();
      const b = await withNewSubscriber(redis, start);
      await warm(b, 'ProductService.product', () => b.products.product(1));
      await a.products.rename(3, 9); // a value whose bytes are copied below
      const newBytes = await redis.getBuffer(key('product:3'));
      // Cut B's subscriber connection, and change the value in Redis without a message: what a
      // message published while B was not subscribed amounts to.
      await redis.client('KILL', 'ID', b.subscriberId);
      await waitFor("B's subscription to drop", () => !b.cache.status().subscribed, 2_000, 1);
      expect(b.cache.status().l1).toBe('waiting');
      await redis.set(key('product:1'), newBytes!, 'PX', 60_000);
      expect(await b.products.product(1)).toBe('product 3 v9'); // not from memory while unsubscribed
      await waitFor('B to subscribe again', () => b.cache.status().l1 === 'serving', 5_000);
      expect(await b.products.product(1)).toBe('product 3 v9');
      expect(b.products.loads).toBe(1);
    },
  );

  it('refuses l1 options it cannot serve when the application starts', async () => {
    @Injectable()
    class NeedsModuleL1 {
      @Cacheable({ key: 'x', l1: true })
      async x(): Promise<number> {
        return 1;
      }
    }
    @Injectable()
    class BadMax {
      @Cacheable({ key: 'y', l1: { max: 0, ttl: 5 } })
      async y(): Promise<number> {
        return 1;
      }
    }
    await expect(createTestApp({ providers: [NeedsModuleL1], cache: { namespace } })).rejects.toThrow(
      /NeedsModuleL1\.x @Cacheable: l1 uses the module's in-process memory/,
    );
    await expect(createTestApp({ providers: [BadMax], cache: { namespace } })).rejects.toThrow(
      /BadMax\.y @Cacheable: l1\.max must be a positive integer/,
    );
    await expect(createTestApp({ cache: { namespace, l1: { max: 10 } as never } })).rejects.toThrow(
      /l1\.ttl must be a positive number of seconds/,
    );
    const a = await start();
    await expect(a.cache.getOrSet('k', async () => 1, { l1: { max: 5 } as never })).rejects.toThrow(
      /CacheService\.getOrSet: l1\.max sizes a memory of its own/,
    );
  });
});
