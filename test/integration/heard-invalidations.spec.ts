// Changes another instance announced detach this instance's loads in flight (core/cache-engine.ts,
// the tier's, prefixes' and tag epochs' hooks), as a change made here does: a call that begins once the
// change is heard does not join a load that read the source before it. Found by a review: each case
// answered the old value before: the call joined the load begun before the change.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { waitFor } from '../support/load-helpers.js';
import { createTestApp, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Catalog {
  loads = 0;
  version = 1;
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;

  /** Loads from now on read the source, then wait until `release`. */
  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }
  release(): void {
    this.openGate();
  }

  @Cacheable({ key: 'post:{0}', ttl: '1h', tags: (_value: unknown, id: number) => [`post:${id}`] })
  async post(id: number): Promise<string> {
    this.loads++;
    const seen = this.version; // what the source said when this load read it
    await this.gate;
    return `post ${id} v${seen}`;
  }
}

describe('invalidations heard from another instance', () => {
  const apps: INestApplication[] = [];
  let namespace: string;

  async function start() {
    const app = await createTestApp({ providers: [Catalog], cache: { namespace, l1: { max: 1_000, ttl: 60 } } });
    apps.push(app);
    const cache = app.get(CacheService);
    await waitFor('L1 to serve', () => cache.status().l1 === 'serving', 5_000);
    return { catalog: app.get(Catalog), cache };
  }

  beforeEach(() => {
    namespace = uniqueNamespace('heard');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it.each([
    ['a write of the key', (cache: CacheService) => cache.set('post:1', 'post 1 v2')],
    ['a tag invalidation', (cache: CacheService) => cache.invalidateTags(['post:1'])],
    ['a prefix clear', (cache: CacheService) => cache.clear('post:')],
  ])(
    '%s: a call that begins once it is heard does not join a load begun before it',
    async (_what, change) => {
      const a = await start();
      const b = await start();
      b.catalog.hold();
      const before = b.catalog.post(1); // B loads: reads the source (v1), then waits
      await waitFor('B to be loading', () => b.catalog.loads === 1, 2_000, 5);

      b.catalog.version = 2;
      a.catalog.version = 2;
      await change(a.cache);
      // Long enough for B to hear A's message (p99 4-20 ms between processes, in-process here).
      await new Promise((resolve) => setTimeout(resolve, 200));

      const after = b.catalog.post(1); // begins once B has heard the change
      b.catalog.release();
      expect(await before).toBe('post 1 v1'); // it overlapped the change: either value may come
      expect(await after).toBe('post 1 v2');
    },
    20_000,
  );
});
