// Clearing a prefix in O(1): `CacheService.clear(prefix)` and `@CacheEvict({ allEntries })` give the
// prefix a new generation instead of deleting keys. The old entries stay in Redis (to expire, or be
// reclaimed by SCAN + UNLINK), but no instance serves them again: the clearing one at once, the
// others when the published marker reaches them, one that lost its subscription after re-reading the
// markers, one that starts later from the markers in Redis. Entries loaded after the clear are served.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheEvict, CacheService } from 'nestjs-redis-cache';
import { withNewSubscriber } from '../support/redis-clients.js';
import { timed, waitFor } from '../support/load-helpers.js';
import { watchCommands } from '../support/monitor.js';
import { standaloneOnly } from '../support/redis-topology.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { setMany } from '../support/redis-keys.js';
import { delay } from '../support/timing.js';

@Injectable()
class CatalogService {
  loads = 0;
  loadDelayMs = 0;
  version = 1;

  @Cacheable({ key: 'item:{0}', ttl: 60 })
  async item(id: number): Promise<string> {
    this.loads++;
    const value = `item ${id} v${this.version}`; // read first, answer later
    await delay(this.loadDelayMs);
    return value;
  }

  @Cacheable({ key: 'price:{0}', ttl: 60 })
  async price(id: number): Promise<string> {
    this.loads++;
    return `price ${id} v${this.version}`;
  }

  @CacheEvict({ allEntries: 'item:' })
  async reimport(): Promise<void> {
    this.version++;
  }

  @CacheEvict({ allEntries: true })
  async resetAll(): Promise<void> {
    this.version++;
  }
}

describe('clear(prefix) in O(1): a new generation, no keys deleted', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let ns: string;

  async function start() {
    const app = await createTestApp({ providers: [CatalogService], cache: { namespace: ns } });
    apps.push(app);
    return { app, catalog: app.get(CatalogService), cache: app.get(CacheService) };
  }

  beforeEach(() => {
    ns = uniqueNamespace('gen');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('clear(prefix): entries under it are misses, others hits; the keys stay until reclaimed', async () => {
    const { catalog, cache } = await start();
    for (const id of [1, 2]) {
      await catalog.item(id);
      await catalog.price(id);
    }
    expect(catalog.loads).toBe(4);
    expect(await cache.clear('item:')).toBe(1); // one prefix cleared, no key deleted
    expect(await redis.exists(`${ns}:item:1`)).toBe(1);
    expect(await redis.exists(`${ns}:item:2`)).toBe(1);
    expect(await cache.get('item:1')).toBeUndefined();
    catalog.version = 2;
    expect(await catalog.item(1)).toBe('item 1 v2');
    expect(await catalog.price(1)).toBe('price 1 v1'); // another prefix: still a hit
    expect(catalog.loads).toBe(5);
    // The reload is served again (it carries an epoch from after the clear).
    expect(await catalog.item(1)).toBe('item 1 v2');
    expect(catalog.loads).toBe(5);
    // reclaim deletes what is left (here the cleared item:2 and the reloaded item:1).
    expect(await cache.reclaim('item:')).toBe(2);
    expect(await redis.exists(`${ns}:item:2`)).toBe(0);
  });

  it('@CacheEvict({ allEntries: prefix }) and allEntries: true', async () => {
    const { catalog } = await start();
    await catalog.item(1);
    await catalog.price(1);
    await catalog.reimport(); // allEntries: 'item:'
    expect(await catalog.item(1)).toBe('item 1 v2');
    expect(await catalog.price(1)).toBe('price 1 v1');
    await catalog.resetAll(); // allEntries: true
    expect(await catalog.item(1)).toBe('item 1 v3');
    expect(await catalog.price(1)).toBe('price 1 v3');
  });

  it('costs the same commands with 3 or 1,500 entries under the prefix: no SCAN, no UNLINK', async () => {
    const { cache } = await start();
    const commandsOfClear = async (prefix: string, entries: number) => {
      const keys = Array.from({ length: entries }, (_, i) => `${ns}:${prefix}${i}`);
      await setMany(redis, keys, 'x', 60_000);
      const watch = await watchCommands(redis);
      try {
        await cache.clear(prefix);
      } finally {
        await watch.stop();
      }
      return (
        watch.seen
          .filter(({ args, source }) => source !== 'lua' && args.some((arg) => arg.includes(ns)))
          .map(({ args }) => args[0]!.toLowerCase())
          // Not the clear's: a script's first run on a node also sends it whole (EVAL), and the
          // subscription's heartbeat is a PUBLISH every second (a clear publishes from its script).
          .filter((command) => command !== 'eval' && command !== 'publish')
      );
    };
    const few = await commandsOfClear('few:', 3);
    const many = await commandsOfClear('many:', 1_500);
    expect(many).toEqual(few);
    expect(many).toEqual(['evalsha']); // the epoch and the marker: one script, their keys share a slot
    expect(many).not.toContain('scan');
    expect(many).not.toContain('unlink');
  });

  it('another app stops serving the cleared entries once the marker reaches it (measured), a new app from the start', async () => {
    const a = await start();
    const b = await start();
    await a.catalog.item(1);
    await b.catalog.item(1); // a hit on A's value
    expect(a.catalog.loads + b.catalog.loads).toBe(1);
    const { ms } = await timed(async () => {
      await a.cache.clear('item:');
      await waitFor('B to see the clear', async () => (await b.cache.get('item:1')) === undefined, 2_000, 1);
    });
    if (process.env.GENERATIONS_VERBOSE) process.stdout.write(`clear seen by another app after ${ms.toFixed(1)} ms\n`);
    expect(ms).toBeLessThan(500);
    const c = await start(); // reads the markers at boot
    expect(await c.cache.get('item:1')).toBeUndefined();
  });

  // CLIENT KILL of one subscriber socket is a one-server mechanism; on a Cluster a node leaving the
  // pool is the same moment (namespace-subscriber.ts), covered by cluster-failover.spec.ts.
  standaloneOnly('kills one subscriber connection (CLIENT KILL ID)')(
    'an app whose subscription dropped re-reads the markers before serving',
    async () => {
      const a = await start();
      const b = await withNewSubscriber(redis, start);
      await a.catalog.item(7);
      expect(await b.cache.get('item:7')).toBe('item 7 v1');
      // Cut B's subscriber connection (the connection that subscribed when B started) and clear while B cannot hear it.
      const bListening = () => b.cache.status().subscribed;
      await redis.client('KILL', 'ID', b.subscriberId);
      await waitFor("B's subscription to drop", () => !bListening(), 2_000, 1);
      await a.cache.clear('item:');
      expect(await b.cache.get('item:7')).toBeUndefined();
      await waitFor('B to subscribe again', bListening, 5_000);
      expect(await b.cache.get('item:7')).toBeUndefined();
    },
  );

  it('a load that began before another app cleared its prefix is returned but not served afterwards', async () => {
    const a = await start();
    const b = await start();
    a.catalog.loadDelayMs = 200;
    const loading = a.catalog.item(3);
    await waitFor('the load to start', () => a.catalog.loads === 1);
    a.catalog.version = 2;
    await b.cache.clear('item:');
    expect(await loading).toBe('item 3 v1');
    await waitFor('A to see the clear', async () => (await a.cache.get('item:3')) === undefined, 2_000, 1);
    a.catalog.loadDelayMs = 0;
    expect(await a.catalog.item(3)).toBe('item 3 v2');
  });
});
