// Early refresh (XFetch): under steady traffic a hit close to expiry reloads the value in the
// background, so callers never see the miss at expiry. The same traffic without it misses each time.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CachePut, CacheService, type CacheNameStats } from 'nestjs-redis-cache';
import { LOAD_MS_OFFSET } from '../../lib/core/cache-entry.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { delay } from '../support/timing.js';

const TTL_MS = 400;
const LOAD_MS = 50;
/** Steady traffic: one call started every EVERY_MS for TRAFFIC_MS (3.75 TTLs). */
const TRAFFIC_MS = 1_500;
const EVERY_MS = 5;

@Injectable()
class TrendingService {
  runs = { early: 0, plain: 0 };

  @Cacheable({ key: 'trending:early', ttl: '400ms', earlyRefresh: 1 })
  async early(): Promise<number> {
    const run = ++this.runs.early;
    await delay(LOAD_MS);
    return run;
  }

  /** Always runs (with @CachePut) and stores its result: the stored entry still carries the load time. */
  @Cacheable({ key: 'trending:forced', ttl: '400ms', earlyRefresh: 1 })
  @CachePut({ key: 'trending:forced:copy', ttl: '400ms' })
  async forced(): Promise<number> {
    await delay(LOAD_MS);
    return 1;
  }

  @Cacheable({ key: 'trending:plain', ttl: '400ms' })
  async plain(): Promise<number> {
    const run = ++this.runs.plain;
    await delay(LOAD_MS);
    return run;
  }
}

/** Starts `call` every `EVERY_MS` for `TRAFFIC_MS` without waiting for it; resolves to all results. */
async function steadyTraffic<T>(call: () => Promise<T>): Promise<T[]> {
  const calls: Promise<T>[] = [];
  const end = performance.now() + TRAFFIC_MS;
  while (performance.now() < end) {
    calls.push(call());
    await delay(EVERY_MS);
  }
  return Promise.all(calls);
}

describe('earlyRefresh (XFetch)', () => {
  let app: INestApplication;
  let trending: TrendingService;
  let cache: CacheService;

  const redis = rawRedis();
  let namespace: string;
  afterAll(() => redis.quit());

  beforeEach(async () => {
    namespace = uniqueNamespace('xfetch');
    app = await createTestApp({ providers: [TrendingService], cache: { namespace, jitter: 0 } });
    trending = app.get(TrendingService);
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());

  const stats = (name: string): CacheNameStats => cache.stats().byName[`TrendingService.${name}`];

  it('with earlyRefresh: 1, steady traffic over several TTLs never misses after the first call', async () => {
    expect(await trending.early()).toBe(1);
    const results = await steadyTraffic(() => trending.early());

    const { misses, hits, stale, refreshes, refreshFailures } = stats('early');
    expect(misses).toBe(1);
    expect(hits).toBe(results.length);
    expect(stale).toBe(0);
    // Traffic spanned 3.75 TTLs and every call was served a fresh value: it was reloaded before
    // each expiry, by background refreshes only.
    expect(trending.runs.early).toBeGreaterThanOrEqual(3);
    expect(refreshes).toBe(trending.runs.early - 1);
    expect(refreshFailures).toBe(0);
    expect(Math.max(...results)).toBeGreaterThan(1);
    // The last call got the latest value, or the one before it while a refresh was running.
    expect(results[results.length - 1]).toBeGreaterThanOrEqual(trending.runs.early - 1);
  }, 10_000);

  it("a value written by @Cacheable with @CachePut carries its load's duration (XFetch's delta)", async () => {
    await trending.forced();
    const loadMsOf = async (key: string) => (await redis.getBuffer(`${namespace}:${key}`))!.readFloatBE(LOAD_MS_OFFSET);
    expect(await loadMsOf('trending:forced')).toBeGreaterThanOrEqual(LOAD_MS - 5);
    expect(await loadMsOf('trending:forced:copy')).toBeGreaterThanOrEqual(LOAD_MS - 5);
  });

  it('without earlyRefresh, the same traffic misses at each expiry', async () => {
    expect(await trending.plain()).toBe(1);
    const results = await steadyTraffic(() => trending.plain());

    const { misses, refreshes } = stats('plain');
    expect(refreshes).toBe(0);
    // At least one reload per expiry within the traffic, each one seen as a miss by its callers.
    expect(trending.runs.plain).toBeGreaterThanOrEqual(Math.floor(TRAFFIC_MS / (TTL_MS + LOAD_MS)) + 1);
    expect(misses).toBeGreaterThanOrEqual(trending.runs.plain);
    expect(misses + stats('plain').hits).toBe(results.length + 1);
  }, 10_000);
});
