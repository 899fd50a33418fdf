import type { CacheEngine } from '../core/cache-engine.js';
import { RedisCacheConfigError } from '../errors.js';
import type { CacheNameStats } from '../metrics/cache-stats.interface.js';
import { toMilliseconds, type DurationString } from '../options/duration.js';
import type { InMemoryBackend } from './in-memory-backend.js';

/**
 * The controls of a `RedisCacheTestingModule` cache in a test: move its clock instead of sleeping,
 * count hits and misses per cache name, start over between tests. One per registration: get the
 * default cache's with `app.get(RedisCacheTesting)`, a named one's with `getCacheTesting(app, name)`.
 *
 * `advance` moves what the store times: TTLs (`ttl`, `nullTtl`, profiles), stale windows
 * (`staleWhileRevalidate`, `grace`), `earlyRefresh`'s expiry, lease deadlines (`lockTtl`) and
 * eviction tombstones; and it empties the in-process tier (`l1`), which keeps values by the process's
 * clock. It does not move timers that wait: `timeout` (a slow method's soft limit) and `lockWait`
 * run in real time.
 *
 * @example
 * const moduleRef = await Test.createTestingModule({
 *   imports: [RedisCacheTestingModule.forRoot({ ttl: '5m' })],
 *   providers: [UsersService],
 * }).compile();
 * const app = await moduleRef.createNestApplication().init();
 * const cache = app.get(RedisCacheTesting);
 *
 * await users.findOne(1);
 * await users.findOne(1);
 * expect(cache.misses('UsersService.findOne')).toBe(1);
 * expect(cache.hits('UsersService.findOne')).toBe(1);
 * cache.advance('5m');
 * await users.findOne(1); // expired: a miss
 */
export class RedisCacheTesting {
  /** @internal Made by RedisCacheTestingModule. */
  constructor(
    private readonly backend: InMemoryBackend,
    private readonly engine: CacheEngine,
    /** True when the module was registered with `disabled: true` (nothing is cached). */
    readonly disabled: boolean,
  ) {}

  /**
   * Moves the cache's clock ahead: milliseconds, or a duration (`'90s'`, `'5m'`, `'1h'`). Entries past
   * their TTL read as expired (or stale, within their stale window), leases and tombstones end.
   */
  advance(duration: number | DurationString): void {
    const ms = toMilliseconds(duration, 'ms');
    if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
      throw new RedisCacheConfigError(
        `RedisCacheTesting.advance takes milliseconds >= 0 or a duration like '5m' (got ${JSON.stringify(duration)})`,
      );
    }
    this.backend.advance(ms);
  }

  /**
   * The counters of one cache name (`ClassName.methodName` unless the decorator's `name` says
   * otherwise; `'CacheService.getOrSet'` or its `name` for `getOrSet`): all 0 before its first call.
   */
  calls(name: string): CacheNameStats {
    return this.engine.metrics.stats().byName[name] ?? NO_CALLS;
  }

  /** How many calls of `name` were served from the cache (in-process tier included). */
  hits(name: string): number {
    return this.calls(name).hits;
  }

  /** How many calls of `name` ran the method because nothing (fresh) was cached. */
  misses(name: string): number {
    return this.calls(name).misses;
  }

  /** Drops every entry (the cache starts empty again) and sets every counter back to 0. */
  reset(): void {
    this.backend.reset();
    this.engine.metrics.reset();
  }

  /** The keys that hold a cached value now (`${namespace}:${key}`), sorted: for debugging a test. */
  keys(): string[] {
    return this.backend.store.entryKeys();
  }
}

const NO_CALLS: CacheNameStats = Object.freeze({
  hits: 0,
  misses: 0,
  stale: 0,
  bypasses: 0,
  failedCalls: 0,
  errors: 0,
  refreshes: 0,
  refreshFailures: 0,
  fallbacks: 0,
  l1Hits: 0,
  hitRate: 0,
  latency: Object.freeze({ count: 0, meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 }),
});
