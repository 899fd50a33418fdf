// ioredis 6 speaks RESP3 by default and lets a client choose RESP2 (`protocol: 2`) or RESP3 with its
// own reply shapes (`replyMapping: 'resp3'`: maps as objects, doubles as numbers). The module must
// work the same on each, on clients it opens and on clients it adopts: reads, writes, tags, prefix
// clears, reclaim, the lease's release messages and L1's invalidation messages (which arrive as
// RESP3 push messages on a RESP3 subscriber). ioredis 5 has none of these options: skipped there.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import type { RedisOptions } from 'ioredis';
import { Cacheable, CacheEvict, CacheService } from 'nestjs-redis-cache';
import { createTestApp, newTestClient, testTopology, uniqueNamespace } from '../support/test-app.js';
import { delay } from '../support/timing.js';

const onIoredis5 = process.env.NODE_OPTIONS?.includes('ioredis5-hook') ?? false;

@Injectable()
class Catalog {
  loads = 0;

  @Cacheable({ key: 'item:{0}', ttl: 60, tags: (result: { id: number }) => [`item:${result.id}`] })
  async item(id: number): Promise<{ id: number; load: number }> {
    this.loads++;
    await delay(100);
    return { id, load: this.loads };
  }

  @Cacheable({ key: 'near:{0}', ttl: 60, l1: { max: 100, ttl: 60 } })
  async near(id: number): Promise<{ id: number; load: number }> {
    return { id, load: ++this.loads };
  }

  @CacheEvict({ key: 'near:{0}' })
  async forgetNear(_id: number): Promise<void> {}
}

const PROTOCOLS: [string, RedisOptions][] = [
  ['RESP2 (protocol: 2)', { protocol: 2 } as RedisOptions],
  ["RESP3 with RESP3 reply shapes (replyMapping: 'resp3')", { protocol: 3, replyMapping: 'resp3' } as RedisOptions],
];

describe.each(PROTOCOLS)(`the module on ioredis 6 clients speaking %s (${testTopology()})`, (_label, options) => {
  const run = onIoredis5 ? it.skip : it;
  const apps: INestApplication[] = [];
  const clients: { disconnect(): void }[] = [];

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    for (const client of clients.splice(0)) client.disconnect();
  });

  /** An app adopting a client of the test Redis opened with `options`. */
  async function start(namespace: string): Promise<INestApplication> {
    const client = newTestClient({ ...options, lazyConnect: true });
    clients.push(client);
    const app = await createTestApp({ providers: [Catalog], cache: { redis: client, namespace } });
    apps.push(app);
    return app;
  }

  run('reads, writes, tags, prefix clears and reclaim', async () => {
    const namespace = uniqueNamespace('resp');
    const app = await start(namespace);
    const catalog = app.get(Catalog);
    const cache = app.get(CacheService);
    expect(await catalog.item(1)).toEqual({ id: 1, load: 1 });
    expect(await catalog.item(1)).toEqual({ id: 1, load: 1 });
    await cache.invalidateTags(['item:1']);
    expect(await catalog.item(1)).toEqual({ id: 1, load: 2 });
    expect(await catalog.item(1)).toEqual({ id: 1, load: 2 });

    await cache.set('plain:a', { at: new Date(5) }, { ttl: 60 });
    expect(await cache.get('plain:a')).toEqual({ at: new Date(5) });
    await cache.clear('plain:');
    expect(await cache.get('plain:a')).toBeUndefined();
    expect(await cache.del('item:1')).toBe(1);
    await cache.set('gone:a', 1);
    await cache.set('gone:b', 2);
    expect(await cache.reclaim('gone:')).toBe(2);
    expect(cache.stats().errors).toBe(0);
  });

  run('one load for concurrent cold calls in two apps (the lease and its release message)', async () => {
    const namespace = uniqueNamespace('resp-lease');
    const [a, b] = [await start(namespace), await start(namespace)];
    const calls = Array.from({ length: 50 }, (_, n) => (n % 2 ? a : b).get(Catalog).item(7));
    const results = await Promise.all(calls);
    expect(a.get(Catalog).loads + b.get(Catalog).loads).toBe(1);
    expect(new Set(results.map((result) => result.load))).toEqual(new Set([1]));
    for (const app of [a, b]) expect(app.get(CacheService).stats().errors).toBe(0);
  });

  run("an eviction in one app drops the other app's L1 copy (the invalidation message)", async () => {
    const namespace = uniqueNamespace('resp-l1');
    const [a, b] = [await start(namespace), await start(namespace)];
    // L1 keeps nothing until it has seen its presence marker in place (see the README, "L1").
    await delay(1_200);
    const first = await a.get(Catalog).near(3);
    expect(await a.get(Catalog).near(3)).toEqual(first);
    await b.get(Catalog).forgetNear(3);
    // The eviction resolved in B; A's copy goes once the message arrives, within milliseconds.
    await delay(200);
    expect(await a.get(Catalog).near(3)).not.toEqual(first);
    for (const app of [a, b]) expect(app.get(CacheService).stats().errors).toBe(0);
  });
});
