// Redis Cluster: the decorators and CacheService on a real 3-primary cluster started for this file.
// Keys are chosen so each multi-key operation touches several primaries (checked with CLUSTER
// KEYSLOT against CLUSTER SLOTS), which is what would raise CROSSSLOT if the store sent them in one
// command; every app asserts `stats().errors === 0`, since each store failure is counted there.
import 'reflect-metadata';
import { Injectable, type INestApplication, type Provider } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Cluster, type ClusterOptions } from 'ioredis';
import {
  CacheEvict,
  CachePut,
  CacheService,
  Cacheable,
  RedisCacheModule,
  type RedisCacheModuleOptions,
} from 'nestjs-redis-cache';
import { startLocalRedisCluster, type LocalRedisCluster } from '../../tools/local-redis-cluster.mjs';
import { eventually } from '../support/fault-helpers.js';
import { scanEntryKeys, scanValueKeys } from '../support/redis-keys.js';
import { stillRunning } from '../support/running-processes.js';
import { uniqueNamespace } from '../support/test-app.js';

interface Item {
  id: number;
  name: string;
  load: number;
}

@Injectable()
class CatalogService {
  loads = 0;

  @Cacheable({ key: 'item:{0}', ttl: 60 })
  async find(id: number): Promise<Item> {
    return { id, name: `item ${id}`, load: ++this.loads };
  }

  @CachePut({ key: 'item:{0}', ttl: 600 })
  async rename(id: number, name: string): Promise<Item> {
    return { id, name, load: ++this.loads };
  }

  @CacheEvict({ keys: (...ids: number[]) => ids.map((id) => `item:${id}`) })
  async removeMany(..._ids: number[]): Promise<void> {}

  @CacheEvict({ allEntries: 'item:' })
  async removeAll(): Promise<void> {}
}

/** A load slow enough for another app to arrive while it holds the lease. */
@Injectable()
class SlowCatalog {
  runs = 0;

  @Cacheable({ key: 'slow:{0}', ttl: 60 })
  async find(id: number): Promise<{ id: number; runs: number }> {
    const runs = ++this.runs;
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { id, runs };
  }
}

/** The keys of entries among `keys`: without the cache's own bookkeeping keys (`${namespace}:__…`). */
function entriesOf(keys: string[], namespace: string): string[] {
  return keys.filter((key) => !key.startsWith(`${namespace}:__`));
}

describe('Redis Cluster (3 primaries)', () => {
  let cluster: LocalRedisCluster;
  /** A client of our own, to look at what the cache wrote. */
  let inspector: Cluster;
  /** Slot ranges and the port of the primary that serves each, from CLUSTER SLOTS. */
  let slotOwners: { from: number; to: number; port: number }[];
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    cluster = await startLocalRedisCluster({ primaries: 3 });
    inspector = new Cluster(cluster.nodes);
    // Each range lists its primary first, then its replicas.
    const slots = await inspector.cluster('SLOTS');
    slotOwners = slots.map(([from, to, ...nodes]) => ({ from, to, port: nodes[0][1] }));
  }, 30_000);

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    await inspector?.quit();
    await cluster?.stop();
    // No node outlives the file.
    expect(stillRunning(cluster?.pids ?? [])).toEqual([]);
  });

  async function createClusterApp(
    redis: RedisCacheModuleOptions['redis'],
    providers: Provider[] = [],
    namespace = uniqueNamespace('cluster'),
  ) {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheModule.forRoot({ redis, namespace })],
      providers,
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    apps.push(app);
    await app.init();
    return { app, namespace, cache: app.get(CacheService) };
  }

  /** The port of the primary that serves `key` (a full Redis key name). */
  async function primaryOf(key: string): Promise<number> {
    const slot = Number(await inspector.cluster('KEYSLOT', key));
    const owner = slotOwners.find(({ from, to }) => slot >= from && slot <= to);
    if (!owner) throw new Error(`no primary serves slot ${slot}`);
    return owner.port;
  }

  async function primariesOf(keys: string[]): Promise<Set<number>> {
    return new Set(await Promise.all(keys.map(primaryOf)));
  }

  it('the launcher started 3 primaries serving all 16384 slots', () => {
    expect(cluster.primaries).toHaveLength(3);
    expect(new Set(slotOwners.map(({ port }) => port))).toEqual(new Set(cluster.primaries.map(({ port }) => port)));
    const covered = slotOwners.reduce((total, { from, to }) => total + to - from + 1, 0);
    expect(covered).toBe(16384);
  });

  describe('decorators, on a cluster the module connects to itself', () => {
    it('@Cacheable misses then hits, with the TTL it asked for, on keys spread over the primaries', async () => {
      const { app, namespace, cache } = await createClusterApp({ cluster: { nodes: cluster.nodes } }, [CatalogService]);
      const catalog = app.get(CatalogService);
      const ids = [1, 2, 3, 4, 5, 6];
      expect((await primariesOf(ids.map((id) => `${namespace}:item:${id}`))).size).toBeGreaterThanOrEqual(2);

      const first = await Promise.all(ids.map((id) => catalog.find(id)));
      const second = await Promise.all(ids.map((id) => catalog.find(id)));
      expect(second).toEqual(first);
      expect(catalog.loads).toBe(ids.length);
      expect(cache.stats().byName['CatalogService.find']).toMatchObject({ hits: 6, misses: 6 });

      for (const id of ids) {
        const pttl = await inspector.pttl(`${namespace}:item:${id}`);
        // ttl 60 s with the default jitter of 0.1: [60 s, 66 s], less the time since the write.
        expect(pttl).toBeGreaterThan(55_000);
        expect(pttl).toBeLessThanOrEqual(66_000);
      }
      expect(cache.stats().errors).toBe(0);
    });

    it('@CachePut writes through with its own TTL, and @Cacheable then serves the new value', async () => {
      const { app, namespace, cache } = await createClusterApp({ cluster: { nodes: cluster.nodes } }, [CatalogService]);
      const catalog = app.get(CatalogService);
      await catalog.find(7);
      const renamed = await catalog.rename(7, 'renamed');
      expect(await catalog.find(7)).toEqual(renamed);
      expect(catalog.loads).toBe(2);
      const pttl = await inspector.pttl(`${namespace}:item:7`);
      expect(pttl).toBeGreaterThan(590_000);
      expect(pttl).toBeLessThanOrEqual(660_000);
      expect(cache.stats().errors).toBe(0);
    });

    it('@CacheEvict({ keys }) removes keys that live on different primaries', async () => {
      const { app, namespace, cache } = await createClusterApp({ cluster: { nodes: cluster.nodes } }, [CatalogService]);
      const catalog = app.get(CatalogService);
      const ids = [1, 2, 3, 4, 5, 6];
      const evicted = ids.map((id) => `${namespace}:item:${id}`);
      expect((await primariesOf(evicted)).size).toBeGreaterThanOrEqual(2);
      await Promise.all([...ids, 8].map((id) => catalog.find(id)));

      await catalog.removeMany(...ids);
      // Evicted keys keep a tombstone for a while (the order of writes): no value.
      expect(await scanValueKeys(inspector, `${namespace}:*`)).toEqual([`${namespace}:item:8`]);
      await catalog.find(1);
      expect(catalog.loads).toBe(8);
      expect(cache.stats().errors).toBe(0);
    });

    it('@CacheEvict({ allEntries: prefix }) invalidates that prefix on every primary and nothing else', async () => {
      const { app, namespace, cache } = await createClusterApp({ cluster: { nodes: cluster.nodes } }, [CatalogService]);
      const catalog = app.get(CatalogService);
      const ids = Array.from({ length: 30 }, (_, i) => i);
      await Promise.all(ids.map((id) => catalog.find(id)));
      await cache.set('items', 'a sibling that shares the prefix text but not `item:`');
      await cache.set('other:1', 1);
      expect((await primariesOf(ids.map((id) => `${namespace}:item:${id}`))).size).toBe(3);

      await catalog.removeAll();
      // O(1): a new generation for `item:`, wherever its keys are; they are left to expire.
      for (const id of ids) expect(await cache.get(`item:${id}`)).toBeUndefined();
      expect(await cache.get('items')).toBe('a sibling that shares the prefix text but not `item:`');
      expect(await cache.get('other:1')).toBe(1);
      expect(await cache.reclaim('item:')).toBe(30);
      expect(entriesOf(await scanEntryKeys(inspector, `${namespace}:*`), namespace)).toEqual([
        `${namespace}:items`,
        `${namespace}:other:1`,
      ]);
      expect(cache.stats().errors).toBe(0);
    });
  });

  describe('CacheService', () => {
    it('del of keys on several primaries deletes them all and counts the ones that existed', async () => {
      const { namespace, cache } = await createClusterApp({ cluster: { nodes: cluster.nodes } });
      const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
      expect((await primariesOf(keys.map((key) => `${namespace}:${key}`))).size).toBeGreaterThanOrEqual(2);
      await Promise.all(keys.map((key, i) => cache.set(key, i)));
      expect(await cache.get('h')).toBe(7);

      expect(await cache.del(...keys, 'absent-1', 'absent-2')).toBe(keys.length);
      expect(await scanValueKeys(inspector, `${namespace}:*`)).toEqual([]);
      expect(await cache.del(...keys)).toBe(0);
      expect(cache.stats().errors).toBe(0);
    });

    it('reclaim(prefix) and reclaim() reach every primary (300 and 1,203 keys) and touch nothing outside the namespace', async () => {
      const { namespace, cache } = await createClusterApp({ cluster: { nodes: cluster.nodes } });
      const outside = [`${namespace}-other:a`, `${namespace}x:bulk:1`, namespace, `other:${namespace}:a`];
      await Promise.all(outside.map((key) => inspector.set(key, 'x', 'PX', 60_000)));
      const bulk = Array.from({ length: 300 }, (_, i) => `bulk:${i}`);
      // Written 100 at a time: this is about reclaim, not about a burst of writes (a burst of 1,200 on a
      // loaded machine can pass commandTimeout, and the cache then skips writes, as it should).
      const setAll = async (keys: string[], value: (key: string) => unknown) => {
        for (let i = 0; i < keys.length; i += 100) {
          await Promise.all(keys.slice(i, i + 100).map((key) => cache.set(key, value(key))));
        }
      };
      await setAll(bulk, (key) => key);
      await setAll(['keep:1', 'keep:2', 'bulky'], (key) => key);
      expect((await primariesOf(bulk.map((key) => `${namespace}:${key}`))).size).toBe(3);

      expect(await cache.reclaim('bulk:')).toBe(300);
      expect(await scanEntryKeys(inspector, `${namespace}:*`)).toEqual([
        `${namespace}:bulky`,
        `${namespace}:keep:1`,
        `${namespace}:keep:2`,
      ]);
      // reclaim() as well, over more keys than one SCAN batch of the store on each primary.
      const more = Array.from({ length: 1200 }, (_, i) => `more:${i}`);
      await setAll(more, () => 0);
      expect(await cache.reclaim()).toBe(1203);
      expect(await scanEntryKeys(inspector, `${namespace}:*`)).toEqual([]);
      for (const key of outside) expect(await inspector.exists(key)).toBe(1);
      await Promise.all(outside.map((key) => inspector.unlink(key)));
      expect(cache.stats().errors).toBe(0);
    });
  });

  describe('an adopted Cluster with a keyPrefix', () => {
    it.each<[string, ClusterOptions]>([
      ['top-level keyPrefix', { keyPrefix: 'pfx:' }],
      ['redisOptions.keyPrefix', { redisOptions: { keyPrefix: 'pfx:' } }],
    ])('%s: set/get/del/clear work and the Redis keys carry the prefix', async (_label, options) => {
      const client = new Cluster(cluster.nodes, options);
      try {
        const { app, namespace, cache } = await createClusterApp(client, [CatalogService]);
        const catalog = app.get(CatalogService);
        expect(cache.client).toBe(client);
        const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
        expect((await primariesOf(keys.map((key) => `pfx:${namespace}:${key}`))).size).toBeGreaterThanOrEqual(2);

        await Promise.all(keys.map((key, i) => cache.set(key, { i })));
        await catalog.find(1);
        expect(await cache.get('c')).toEqual({ i: 2 });
        expect(await catalog.find(1)).toMatchObject({ load: 1 });
        expect(await scanEntryKeys(inspector, `pfx:${namespace}:*`)).toEqual(
          [...keys, 'item:1'].map((key) => `pfx:${namespace}:${key}`).sort(),
        );
        expect(await scanEntryKeys(inspector, `${namespace}:*`)).toEqual([]);

        expect(await cache.del('a', 'b', 'c', 'absent')).toBe(3);
        expect(await scanValueKeys(inspector, `pfx:${namespace}:*`)).toEqual(
          ['d', 'e', 'f', 'item:1'].map((key) => `pfx:${namespace}:${key}`),
        );
        expect(await cache.clear('item:')).toBe(1); // O(1): one prefix cleared, item:1 no longer served
        expect(await catalog.find(1)).toMatchObject({ load: 2 });
        expect(await cache.get('d')).toEqual({ i: 3 });
        expect(await cache.reclaim()).toBeGreaterThanOrEqual(4); // d, e, f, item:1 and the bookkeeping keys
        expect(await scanEntryKeys(inspector, `pfx:${namespace}:*`)).toEqual([]);
        expect(cache.stats().errors).toBe(0);

        // The module did not open this client, so closing the app leaves it open.
        await app.close();
        apps.splice(apps.indexOf(app), 1);
        expect(client.status).toBe('ready');
        expect(await client.ping()).toBe('PONG');
      } finally {
        await client.quit();
      }
    });
  });

  it('the lease works across apps on a Cluster: one load, and the waiter is woken by the release', async () => {
    const namespace = uniqueNamespace('cluster-lease');
    const nodes = { cluster: { nodes: cluster.nodes } };
    const holder = await createClusterApp(nodes, [SlowCatalog], namespace);
    const waiter = await createClusterApp(nodes, [SlowCatalog], namespace);
    const holding = holder.app.get(SlowCatalog).find(7);
    // The method runs once the lease is taken (a busy machine may take more than a few ms to get there).
    await eventually('the holder runs the method', () => holder.app.get(SlowCatalog).runs === 1, 2_000);
    expect(await inspector.exists(`${namespace}:slow:7`)).toBe(1); // the lease placeholder
    const started = performance.now();
    const waited = await waiter.app.get(SlowCatalog).find(7);
    const ms = performance.now() - started;
    expect(await holding).toEqual({ id: 7, runs: 1 });
    expect(waited).toEqual({ id: 7, runs: 1 }); // the holder's value
    expect(waiter.app.get(SlowCatalog).runs).toBe(0);
    expect(ms).toBeLessThan(1_500); // the release woke it, not lockWait (5 s)
    expect(waiter.cache.stats().errors + holder.cache.stats().errors).toBe(0);
  });

  it('app.close() closes the Cluster client the module opened', async () => {
    const { app, cache } = await createClusterApp({ cluster: { nodes: cluster.nodes } });
    const client = cache.client;
    expect(client.status).toBe('ready');
    await cache.set('k', 1);
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    expect(client.status).toBe('end');
  });
});
