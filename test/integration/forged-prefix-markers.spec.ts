// A prefix marker in a message is untrusted input (core/invalidation/prefix-generations.ts). One far
// ahead of Redis's clock but within what RedisClock.plausible allows (a forged message, or a clock that
// jumped) is kept, and clears at worst too early; but loads under the prefix used to record it as their
// epoch, so a real clear in the next minutes took a smaller epoch and missed their entries, in L1 and in
// Redis. Now no load records an epoch past Redis's clock as estimated here (PrefixGenerations.floor).
// Found by a review: each case served the old value after clear().
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { waitFor } from '../support/load-helpers.js';
import { bookkeeping, publishAnnouncement } from '../support/redis-keys.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Catalog {
  version = 1;

  @Cacheable({ key: 'post:{0}', ttl: '1h' })
  async post(id: number): Promise<string> {
    return `post ${id} v${this.version}`;
  }
}

describe('a prefix marker ahead of Redis clock, in a message', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let namespace: string;

  async function start() {
    const app = await createTestApp({ providers: [Catalog], cache: { namespace, l1: { max: 1_000, ttl: 60 } } });
    apps.push(app);
    const cache = app.get(CacheService);
    await waitFor('L1 to serve', () => cache.status().l1 === 'serving', 5_000);
    return { app, catalog: app.get(Catalog), cache };
  }

  /** Publishes a marker of `post:` four minutes ahead of Redis's clock (within plausible's slack). */
  async function forgeMarker(): Promise<void> {
    const [seconds, micros] = await redis.time();
    const ahead = Number(seconds) * 1_000_000 + Number(micros) + 4 * 60_000_000;
    await publishAnnouncement(redis, bookkeeping(namespace), 'prefixChannel', `${ahead} post:`);
  }

  beforeEach(() => {
    namespace = uniqueNamespace('forged-marker');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('a real clear after it still clears what was loaded meanwhile', async () => {
    const a = await start();
    await forgeMarker();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(a.cache.stats().rejectedMessages).toBe(0); // plausible: not rejected

    expect(await a.catalog.post(1)).toBe('post 1 v1');
    a.catalog.version = 2;
    await a.cache.clear('post:');
    expect(await a.catalog.post(1)).toBe('post 1 v2');
  }, 20_000);

  it('no entry in Redis records it: an instance that never heard the message clears it too', async () => {
    const a = await start();
    await forgeMarker();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await a.catalog.post(1)).toBe('post 1 v1'); // stored with an epoch no later than Redis's clock
    await a.app.close();
    apps.splice(apps.indexOf(a.app), 1);

    const b = await start(); // reads the markers Redis holds: the forged one is not among them
    b.catalog.version = 2;
    await b.cache.clear('post:');
    expect(await b.catalog.post(1)).toBe('post 1 v2');
  }, 20_000);
});
