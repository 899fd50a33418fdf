// Hostile input and lost state, items 9 and 11: what the module keeps grows with bounds (prefix
// markers, metric names), and what would be a silent mistake is said at bootstrap (a cache on a
// request-scoped provider).
import 'reflect-metadata';
import { Injectable, Scope, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { MAX_PREFIX_MARKERS } from '../../../lib/core/invalidation/prefix-generations.js';
import { MAX_NAMES, OTHER_NAME } from '../../../lib/metrics/cache-metrics.js';
import { LogRecorder } from '../../support/fault-helpers.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../../support/test-app.js';
import { bookkeeping } from '../../support/redis-keys.js';

@Injectable()
class Posts {
  loads = 0;

  @Cacheable({ key: 'post:{0}' })
  async post(id: number): Promise<number> {
    this.loads++;
    return id;
  }
}

@Injectable({ scope: Scope.REQUEST })
class PerRequest {
  @Cacheable({ key: 'me:{0}' })
  async me(id: number): Promise<number> {
    return id;
  }
}

describe('bounded state and guard rails', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let ns: string;

  beforeEach(() => {
    ns = uniqueNamespace('bounded');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('prefix markers have a cap: past it they collapse into one marker of the whole namespace (wider, never less safe)', async () => {
    const app = await createTestApp({ providers: [Posts], cache: { namespace: ns } });
    apps.push(app);
    const posts = app.get(Posts);
    const cache = app.get(CacheService);
    await posts.post(1);
    // The namespace's own marker, and as many more as the cap allows.
    for (let i = 0; i < MAX_PREFIX_MARKERS - 1; i++) await cache.clear(`other:${i}:`);
    expect(await redis.zcard(bookkeeping(ns).prefixes)).toBe(MAX_PREFIX_MARKERS);
    // Narrower markers under a wider clear are dropped, not kept beside it.
    await cache.clear('other:');
    expect(await redis.zcard(bookkeeping(ns).prefixes)).toBe(2);
    await posts.post(1);
    expect(posts.loads).toBe(1); // 'post:' was never cleared
    for (let i = 0; i < MAX_PREFIX_MARKERS; i++) await cache.clear(`more:${i}:`);
    // Collapsed into a marker of the whole namespace on the way (and one clear since).
    expect(await redis.zcard(bookkeeping(ns).prefixes)).toBeLessThanOrEqual(2);
    await posts.post(1);
    expect(posts.loads).toBe(2); // so post:1, loaded before, is not served
    await posts.post(1);
    expect(posts.loads).toBe(2);
  }, 30_000);

  it('names built per call cannot grow the metrics without bound: past the cap they are counted together', async () => {
    const logs = new LogRecorder();
    const app = await createTestApp({ cache: { namespace: ns }, logger: logs });
    apps.push(app);
    const cache = app.get(CacheService);
    // 50 calls at a time; MAX_NAMES is a multiple of 50, so names 0..MAX_NAMES-1 come first.
    for (let i = 0; i < MAX_NAMES + 50; i += 50) {
      const batch = Array.from({ length: 50 }, (_, j) => i + j);
      await Promise.all(batch.map((k) => cache.getOrSet(`k:${k}`, async () => k, { name: `name ${k}` })));
    }
    const { byName } = cache.stats();
    expect(Object.keys(byName)).toHaveLength(MAX_NAMES + 1);
    expect(byName[OTHER_NAME].misses).toBe(50);
    expect(logs.cacheLines('warn').filter((line) => line.includes(OTHER_NAME))).toHaveLength(1);
  }, 30_000);

  it('@Cacheable on a request-scoped provider is warned about at bootstrap', async () => {
    const logs = new LogRecorder();
    const app = await createTestApp({ providers: [PerRequest], cache: { namespace: ns }, logger: logs });
    apps.push(app);
    const warnings = logs.cacheLines('warn').filter((line) => line.includes('PerRequest.me'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/request-scoped .*keyed by the method's arguments only/);
  });
});
