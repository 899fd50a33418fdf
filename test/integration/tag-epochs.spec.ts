// Tagged hits at one round trip: each instance knows its tags' epochs in memory, read once from Redis
// while subscribed and raised by every invalidation's message on the tags channel, so a tagged hit
// sends one GET, like an untagged one. Another app stops serving invalidated entries once the message
// reaches it; an app whose subscription dropped reads the tag keys again before it serves; a message
// no instance would send is counted and dropped.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { withNewSubscriber } from '../support/redis-clients.js';
import { timed, waitFor } from '../support/load-helpers.js';
import { watchCommands } from '../support/monitor.js';
import { standaloneOnly } from '../support/redis-topology.js';
import { bookkeeping, publishAnnouncement } from '../support/redis-keys.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Catalog {
  loads = 0;
  version = 1;

  @Cacheable({ key: 'item:{0}', ttl: 60, tags: ['items', 'catalog'] })
  async item(id: number): Promise<string> {
    this.loads++;
    return `item ${id} v${this.version}`;
  }

  @Cacheable({ key: 'plain:{0}', ttl: 60 })
  async plain(id: number): Promise<string> {
    this.loads++;
    return `plain ${id} v${this.version}`;
  }
}

describe('tag epochs in memory', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let ns: string;

  async function start() {
    const app = await createTestApp({ providers: [Catalog], cache: { namespace: ns } });
    apps.push(app);
    return { app, catalog: app.get(Catalog), cache: app.get(CacheService) };
  }

  /** What `call` sends to Redis for keys of this namespace, by command name (scripts' own and heartbeats left out). */
  async function commandsOf(call: () => Promise<unknown>): Promise<string[]> {
    const watch = await watchCommands(redis);
    try {
      await call();
    } finally {
      await watch.stop();
    }
    return watch.seen
      .filter(
        ({ args, source }) =>
          source !== 'lua' &&
          args.some((arg) => arg.includes(ns)) &&
          !args.some((arg) => arg.startsWith(`${bookkeeping(ns).leaseChannel}:`)),
      )
      .map(({ args }) => args[0]!.toLowerCase());
  }

  beforeEach(() => {
    ns = uniqueNamespace('tagepochs');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('a tagged hit sends one GET, like an untagged hit, once its tags were read', async () => {
    const { catalog } = await start();
    await catalog.item(1);
    await catalog.plain(1);
    // The first hit reads the tags' epochs (one MGET); later hits know them.
    expect(await commandsOf(() => catalog.item(1))).toEqual(['get', 'mget']);
    expect(await commandsOf(() => catalog.item(1))).toEqual(['get']);
    expect(await commandsOf(() => catalog.plain(1))).toEqual(['get']);
    // Other entries under the same tags need no read either.
    await catalog.item(2);
    expect(await commandsOf(() => catalog.item(2))).toEqual(['get']);
    expect(catalog.loads).toBe(3);
  });

  it("another app stops serving an invalidated entry once the message reaches it (measured); this app's own at once", async () => {
    const a = await start();
    const b = await start();
    await a.catalog.item(1);
    expect(await b.catalog.item(1)).toBe('item 1 v1'); // B reads the tags' epochs
    expect(await a.catalog.item(1)).toBe('item 1 v1'); // and A
    expect(await commandsOf(() => b.catalog.item(1))).toEqual(['get']); // B knows them
    a.catalog.version = 2;
    b.catalog.version = 2;
    const { ms } = await timed(async () => {
      await a.cache.invalidateTags('catalog');
      expect(await a.cache.get('item:1')).toBeUndefined(); // the invalidating app at once
      await waitFor('B to see the invalidation', async () => (await b.cache.get('item:1')) === undefined, 2_000, 1);
    });
    expect(ms).toBeLessThan(500);
    expect(await b.catalog.item(1)).toBe('item 1 v2');
    expect(await a.catalog.item(1)).toBe('item 1 v2');
    expect(a.catalog.loads + b.catalog.loads).toBe(2);
    const c = await start(); // knows nothing yet: reads the tag keys
    expect(await c.cache.get('item:1')).toBe('item 1 v2');
  });

  // CLIENT KILL of one subscriber socket is a one-server mechanism; on a Cluster a node leaving the
  // pool is the same moment (namespace-subscriber.ts).
  standaloneOnly('kills one subscriber connection (CLIENT KILL ID)')(
    'an app whose subscription dropped reads the tag keys before serving, and knows them again once subscribed',
    async () => {
      const a = await start();
      const b = await withNewSubscriber(redis, start);
      await a.catalog.item(7);
      expect(await b.catalog.item(7)).toBe('item 7 v1');
      expect(await commandsOf(() => b.catalog.item(7))).toEqual(['get']);
      const bListening = () => b.cache.status().subscribed;
      await redis.client('KILL', 'ID', b.subscriberId);
      await waitFor("B's subscription to drop", () => !bListening(), 2_000, 1);
      // Invalidated while B cannot hear it: B must not trust what it knew.
      b.catalog.version = 2;
      await a.cache.invalidateTags('items');
      // The entry, the prefix markers (re-read too while unsubscribed: one script), the tags' epochs.
      expect(await commandsOf(async () => expect(await b.cache.get('item:7')).toBeUndefined())).toEqual([
        'get',
        'evalsha',
        'mget',
      ]);
      await waitFor('B to subscribe again', bListening, 5_000);
      // Subscribed: the first read learns the epochs again (still invalidated), later ones know them.
      expect(await commandsOf(async () => expect(await b.cache.get('item:7')).toBeUndefined())).toEqual([
        'get',
        'mget',
      ]);
      expect(await b.catalog.item(7)).toBe('item 7 v2');
      expect(await commandsOf(() => b.catalog.item(7))).toEqual(['get']);
    },
  );

  it('a message no instance would send is counted and dropped: the entries stay served', async () => {
    const { catalog, cache } = await start();
    await catalog.item(1);
    await catalog.item(1);
    const keys = bookkeeping(ns);
    const before = cache.stats().rejectedMessages;
    const forged = [
      't 1e300 items', // an epoch Redis's clock cannot have reached: would hide the tag's entries forever
      `t ${Number.MAX_SAFE_INTEGER} items`,
      't 12 ',
      'x 12 items',
      't 12 it ems\u0000',
      'garbage',
    ];
    for (const message of forged) await publishAnnouncement(redis, keys, 'tagChannel', message);
    await waitFor(
      'every forged message to be counted',
      () => cache.stats().rejectedMessages - before === forged.length,
    );
    expect(await commandsOf(() => catalog.item(1))).toEqual(['get']);
    expect(catalog.loads).toBe(1);
  });
});
