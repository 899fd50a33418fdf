// Hostile input and lost state, item 3: the module's own keys (the prefix markers, tag keys, the
// epoch) may be evicted under `allkeys-lru` or deleted by hand. Losing them must never make an
// invalidated entry servable again: at worst, entries written before the loss count as invalidated.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Cacheable, CacheService, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { startLocalRedis, type LocalRedisServer } from '../../../tools/local-redis-server.mjs';
import { waitFor } from '../../support/load-helpers.js';
import { createTestApp, rawRedis, standaloneOnly, uniqueNamespace } from '../../support/test-app.js';
import { bookkeeping } from '../../support/redis-keys.js';

@Injectable()
class Catalog {
  loads = new Map<string, number>();
  /** Loads of `list` wait here while a test holds them. */
  held = new Map<number, Promise<void>>();
  version = 1;

  @Cacheable({ key: 'post:{0}', ttl: '1h' })
  async post(id: number): Promise<string> {
    return this.load(`post:${id}`);
  }

  @Cacheable({ key: 'list:{0}', ttl: '1h', tags: ['posts'] })
  async list(id: number): Promise<string> {
    // The source is read first; a held load then takes its time before it returns what it read.
    const value = this.load(`list:${id}`);
    await this.held.get(id);
    return value;
  }

  /** How many times the source was read for `key`. */
  count(key: string): number {
    return this.loads.get(key) ?? 0;
  }

  private load(key: string): string {
    this.loads.set(key, this.count(key) + 1);
    return `${key} v${this.version}`;
  }
}

describe('lost bookkeeping fails safe', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let ns: string;

  async function start(cache: RedisCacheModuleOptions = {}) {
    const app = await createTestApp({ providers: [Catalog], cache: { namespace: ns, ...cache } });
    apps.push(app);
    return { catalog: app.get(Catalog), cache: app.get(CacheService) };
  }

  beforeEach(() => {
    ns = uniqueNamespace('lost');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('deleted prefix markers: a new instance serves none of the entries cleared before, nor does the old one', async () => {
    const a = await start();
    for (const id of [1, 2, 3]) await a.catalog.post(id);
    await a.cache.clear('post:');
    expect(await redis.exists(bookkeeping(ns).prefixes)).toBe(1);
    await redis.del(bookkeeping(ns).prefixes); // evicted, or deleted by hand
    // The instance that cleared still knows its marker.
    await a.catalog.post(1);
    expect(a.catalog.count('post:1')).toBe(2);
    const b = await start();
    for (const id of [2, 3]) expect(await b.catalog.post(id)).toBe(`post:${id} v1`);
    for (const id of [2, 3]) expect(b.catalog.count(`post:${id}`)).toBe(1); // every one from the source
    // The markers are back (a marker of the whole namespace), and what is loaded now is served.
    expect(await redis.exists(bookkeeping(ns).prefixes)).toBe(1);
    await b.catalog.post(2);
    expect(b.catalog.count('post:2')).toBe(1);
  });

  it('deleted prefix markers, then a clear: they come back marking the whole namespace at the last invalidation', async () => {
    const a = await start();
    for (const id of [1, 2]) await a.catalog.post(id);
    await a.cache.clear('post:1');
    await redis.del(bookkeeping(ns).prefixes);
    await a.cache.clear('other:'); // finds the markers gone: everything before the last clear is invalid
    const b = await start();
    await b.catalog.post(1);
    await b.catalog.post(2);
    expect([b.catalog.count('post:1'), b.catalog.count('post:2')]).toEqual([1, 1]);
  });

  it("a tag key recreated after its loss does not revalidate entries loaded before the tag's invalidation", async () => {
    // Two instances: the invalidation comes from the other one, so this one's slow load is not
    // dropped in-process and goes on to write (and so to recreate the lost tag key).
    const { catalog } = await start();
    const other = await start();
    // A slow load of list:1 begins (its epoch is read now), list:2 loads and is stored after it.
    let release!: () => void;
    catalog.held.set(1, new Promise((resolve) => (release = resolve)));
    const slow = catalog.list(1);
    await waitFor('the slow load to read the source', () => catalog.count('list:1') === 1, 2_000, 5);
    await catalog.list(2);
    expect(catalog.count('list:2')).toBe(1);
    catalog.version = 2;
    await other.cache.invalidateTags('posts'); // both predate it
    await redis.del(bookkeeping(ns).tag('posts')); // and its marker is lost
    release(); // the slow load's write recreates the tag key
    expect(await slow).toBe('list:1 v1');
    catalog.held.clear();
    expect(await catalog.list(2)).toBe('list:2 v2');
    expect(await catalog.list(1)).toBe('list:1 v2');
    expect([catalog.count('list:1'), catalog.count('list:2')]).toEqual([2, 2]);
    expect(await catalog.list(1)).toBe('list:1 v2'); // and now stored: a hit
    expect(catalog.count('list:1')).toBe(2);
  });

  it('the tag key and the epoch both lost: entries loaded before count as invalidated', async () => {
    const { catalog, cache } = await start();
    await catalog.list(1);
    catalog.version = 2;
    await cache.invalidateTags('posts');
    await redis.del(bookkeeping(ns).tag('posts'));
    await redis.del(bookkeeping(ns).epoch);
    expect(await catalog.list(1)).toBe('list:1 v2');
    expect(await catalog.list(1)).toBe('list:1 v2'); // stored again, and served
    expect(catalog.count('list:1')).toBe(2);
  });

  describe('under allkeys-lru with a tiny maxmemory', () => {
    let server: LocalRedisServer;
    let filler: Redis;

    beforeAll(async () => {
      server = await startLocalRedis({
        args: ['--maxmemory', '4mb', '--maxmemory-policy', 'allkeys-lru', '--maxmemory-samples', '10'],
      });
      filler = new Redis(server.url, { maxRetriesPerRequest: 1 });
    });
    afterAll(async () => {
      filler.disconnect();
      await server.stop();
    });

    // One server's maxmemory: the claim is about what Redis evicts, which a cluster spreads over
    // nodes; the deletions above make the same claim on both topologies.
    standaloneOnly('a server of its own with a tiny maxmemory')(
      'evicted markers and tag keys: no instance serves an entry cleared or invalidated before',
      async () => {
        const a = await start({ redis: server.url });
        const ids = Array.from({ length: 20 }, (_, i) => i + 1);
        for (const id of ids) {
          await a.catalog.post(id);
          await a.catalog.list(id);
        }
        await a.cache.clear('post:');
        await a.cache.invalidateTags('posts');
        a.catalog.version = 2;
        const keys = bookkeeping(ns);
        const entries = ids.flatMap((id) => [`${ns}:post:${id}`, `${ns}:list:${id}`]);
        const saved = await Promise.all(
          entries.map(async (key) => ({ key, dump: await filler.dumpBuffer(key), pttl: await filler.pttl(key) })),
        );
        expect(saved.every(({ dump, pttl }) => dump !== null && pttl > 0)).toBe(true);
        // Fill the server while reading the entries (keeping them recently used), until Redis has
        // evicted the markers and the tag key, which nothing reads meanwhile.
        const chunk = 'x'.repeat(64 * 1024);
        let round = 0;
        while ((await filler.exists(keys.prefixes, keys.tag('posts'))) > 0) {
          if (++round > 500) throw new Error('the bookkeeping was never evicted');
          const pipeline = filler.pipeline();
          for (let i = 0; i < 8; i++) pipeline.set(`filler:${round}:${i}`, chunk);
          for (const key of entries) pipeline.get(key);
          await pipeline.exec();
        }
        // LRU is approximate, its clock ticks once a second, so it may have taken entries too
        // (CI once saw all 40 go). The state under test is "markers gone, entries kept": free the
        // filler and put back, byte for byte and with their TTLs, the entries it took.
        for (let r = 1; r <= round; r++) await filler.del(...Array.from({ length: 8 }, (_, i) => `filler:${r}:${i}`));
        for (const { key, dump, pttl } of saved) {
          if (!(await filler.exists(key))) await filler.restore(key, pttl, dump!);
        }
        expect(await filler.exists(...entries)).toBe(entries.length);
        expect(await filler.exists(keys.prefixes, keys.tag('posts'))).toBe(0);
        // A new instance (it reads the markers, finds them gone) and the old one (it knows them).
        const b = await start({ redis: server.url });
        b.catalog.version = 2;
        for (const id of ids) {
          await b.catalog.post(id);
          await b.catalog.list(id);
        }
        for (const id of ids) expect([b.catalog.count(`post:${id}`), b.catalog.count(`list:${id}`)]).toEqual([1, 1]);
        const before = ids.map((id) => a.catalog.count(`list:${id}`));
        for (const id of ids) await a.catalog.list(id);
        // A may find the value B stored since (loaded after the invalidation); never its own old one.
        for (const id of ids) expect(await a.catalog.list(id)).not.toBe(`list:${id} v1`);
        expect(ids.map((id) => a.catalog.count(`list:${id}`)).every((count, i) => count >= before[i])).toBe(true);
      },
      30_000,
    );
  });
});
