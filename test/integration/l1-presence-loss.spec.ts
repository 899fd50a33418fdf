// The L1 presence marker lost while an instance serves from L1 (core/l1/l1-presence.ts): evicted under
// maxmemory, deleted by hand, or expired while the process stalled. A writer that then asks finds no
// marker and stops announcing its writes, so an instance's L1 could keep an old value until its own
// TTL. Each instance finds the marker gone when it renews it (every 3 s): absent, or holding another
// generation when another instance wrote it again first. It empties L1 and settles again before it
// keeps anything. Found by reviews: L1 served the old value for its whole TTL before (with two
// instances, the second to renew did not notice).
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
  const opened: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it.each([1, 2])(
    'with %i instance(s) serving from L1: each empties it and settles again once the marker was gone',
    async (readers) => {
      const namespace = uniqueNamespace('l1-presence-loss');
      const apps = [];
      for (let i = 0; i < readers; i++) {
        apps.push(await createTestApp({ providers: [Catalog], cache: { namespace, l1: { max: 1_000, ttl: 60 } } }));
      }
      // A worker that only writes, without L1: it announces only while it believes some instance keeps one.
      const writerApp = await createTestApp({ cache: { namespace } });
      opened.push(...apps, writerApp);
      const writer = writerApp.get(CacheService);
      const instances = apps.map((app) => ({
        cache: app.get(CacheService),
        catalog: app.get(Catalog),
        waiting: false,
      }));
      for (const { cache, catalog } of instances) {
        await waitFor('L1 to serve', () => cache.status().l1 === 'serving', 5_000);
        for (let i = 0; i < 3; i++) expect(await catalog.post(1)).toBe('post 1 v1');
        expect(cache.stats().byName['Catalog.post'].l1Hits).toBeGreaterThan(0);
      }

      const presence = bookkeeping(namespace).presence;
      const watch = setInterval(() => {
        for (const instance of instances) instance.waiting ||= instance.cache.status().l1 === 'waiting';
      }, 5);
      try {
        // The marker is lost; the writer's next write asks, trusts the "none" and does not announce
        // the one after it. Retried if a reader renewed the marker in between (every 3 s).
        for (let attempt = 0; ; attempt++) {
          await redis.del(presence);
          await writer.set('other', 'x');
          await new Promise((resolve) => setTimeout(resolve, 30));
          await writer.set('post:1', 'post 1 v2');
          if ((await redis.exists(presence)) === 0) break;
          if (attempt === 5) throw new Error('a reader renewed its marker before every unannounced write');
        }
        // At its next renewal each reader finds the marker gone, or written again by the other since
        // (another generation): L1 keeps nothing until it settles again.
        for (const instance of instances) {
          await waitFor('the reader to find its marker gone', () => instance.waiting, 5_000);
          await waitFor('L1 to serve again', () => instance.cache.status().l1 === 'serving', 5_000);
        }
      } finally {
        clearInterval(watch);
      }
      expect(await redis.exists(presence)).toBe(1);
      for (const { catalog } of instances) expect(await catalog.post(1)).toBe('post 1 v2');
    },
    20_000,
  );
});
