// The L1 presence marker lost while an instance serves from L1 (core/l1/l1-presence.ts): evicted under
// maxmemory, deleted by hand, or expired while the process stalled. A writer that then asks finds no
// marker and stops announcing its writes, so the instance's L1 could keep an old value until its own
// TTL. The instance finds the marker gone when it renews it (every 3 s), empties L1 and settles again
// before it keeps anything. Found by a review: L1 served the old value for its whole TTL before.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { waitFor } from '../support/load-helpers.js';
import { bookkeeping } from '../support/redis-keys.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Catalog {
  version = 1;

  @Cacheable({ key: 'post:{0}', ttl: '1h' })
  async post(id: number): Promise<string> {
    return `post ${id} v${this.version}`;
  }
}

describe('the L1 presence marker lost', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('an instance serving from L1 empties it and settles again once it finds the marker gone', async () => {
    const namespace = uniqueNamespace('l1-presence-loss');
    const reader = await createTestApp({ providers: [Catalog], cache: { namespace, l1: { max: 1_000, ttl: 60 } } });
    // A worker that only writes, without L1: it announces only while it believes some instance keeps one.
    const writerApp = await createTestApp({ cache: { namespace } });
    apps.push(reader, writerApp);
    const cache = reader.get(CacheService);
    const writer = writerApp.get(CacheService);
    const catalog = reader.get(Catalog);
    await waitFor('L1 to serve', () => cache.status().l1 === 'serving', 5_000);
    for (let i = 0; i < 3; i++) expect(await catalog.post(1)).toBe('post 1 v1');
    expect(cache.stats().byName['Catalog.post'].l1Hits).toBeGreaterThan(0);

    const presence = bookkeeping(namespace).presence;
    let waiting = false;
    const watch = setInterval(() => (waiting ||= cache.status().l1 === 'waiting'), 5);
    try {
      // The marker is lost; the writer's next write asks, trusts the "none" and does not announce the
      // one after it. Retried if the reader happened to renew the marker in between (every 3 s).
      for (let attempt = 0; ; attempt++) {
        await redis.del(presence);
        await writer.set('other', 'x');
        await new Promise((resolve) => setTimeout(resolve, 30));
        await writer.set('post:1', 'post 1 v2');
        if ((await redis.exists(presence)) === 0) break;
        if (attempt === 5) throw new Error('the reader renewed its marker before every unannounced write');
      }
      // At its next renewal the reader finds the marker gone: L1 keeps nothing until it settles again.
      await waitFor('the reader to find its marker gone', () => waiting, 5_000);
      await waitFor('L1 to serve again', () => cache.status().l1 === 'serving', 5_000);
    } finally {
      clearInterval(watch);
    }
    expect(await redis.exists(presence)).toBe(1);
    expect(await catalog.post(1)).toBe('post 1 v2');
  }, 20_000);
});
