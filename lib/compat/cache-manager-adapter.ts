import type { CacheService } from '../cache.service.js';
import { RedisCacheConfigError } from '../errors.js';

/**
 * The token `@nestjs/cache-manager` injects its cache under. The same string, so `@Inject(CACHE_MANAGER)`
 * imported from either package resolves this module's adapter (`RedisCacheManagerModule`).
 */
export const CACHE_MANAGER = 'CACHE_MANAGER';

/** One item of `mset`: as cache-manager's, its `ttl` in milliseconds. */
export interface CacheManagerItem<T> {
  key: string;
  value: T;
  ttl?: number;
}

/**
 * `CACHE_MANAGER`'s methods that apps call, on this module's cache, with cache-manager's units: TTLs in
 * **milliseconds**. It lets services written against `@nestjs/cache-manager` keep working while an
 * app moves to `CacheService` (seconds, tags, prefixes, single-flight). Differences, by design:
 * - a TTL of 0 or none means the module's default `ttl`, not "forever": every entry here expires;
 * - `clear()` clears this cache's namespace (in O(1), see `CacheService.clear`), not the whole Redis;
 * - like every cache call here it fails open: a Redis failure reads as a miss and writes nothing.
 */
export class CacheManagerAdapter {
  constructor(private readonly cache: CacheService) {}

  get<T>(key: string): Promise<T | undefined> {
    return this.cache.get<T>(key);
  }

  mget<T>(keys: string[]): Promise<Array<T | undefined>> {
    return Promise.all(keys.map((key) => this.cache.get<T>(key)));
  }

  /** Stores `value` for `ttl` milliseconds (the module's `ttl` when 0 or absent); resolves to `value`. */
  async set<T>(key: string, value: T, ttl?: number): Promise<T> {
    await this.cache.set(key, value, { ttl: seconds(ttl, 'set') });
    return value;
  }

  async mset<T>(items: CacheManagerItem<T>[]): Promise<CacheManagerItem<T>[]> {
    await Promise.all(items.map(({ key, value, ttl }) => this.cache.set(key, value, { ttl: seconds(ttl, 'mset') })));
    return items;
  }

  /** True when the key held a value. */
  async del(key: string): Promise<boolean> {
    return (await this.cache.del(key)) > 0;
  }

  async mdel(keys: string[]): Promise<boolean> {
    await this.cache.del(...keys);
    return true;
  }

  /** Clears every entry of this cache's namespace. */
  async clear(): Promise<boolean> {
    await this.cache.clear();
    return true;
  }

  /**
   * The cached value, or `fn()`'s, stored for `ttl` milliseconds: `CacheService.getOrSet`, so
   * concurrent callers share one load, in this process and across processes.
   */
  wrap<T>(key: string, fn: () => T | Promise<T>, ttl?: number): Promise<T> {
    return this.cache.getOrSet(key, async () => fn(), { ttl: seconds(ttl, 'wrap') });
  }
}

/** cache-manager's milliseconds as this module's TTL: a duration string in ms, or the default. */
function seconds(ttl: number | undefined, method: string): `${number}ms` | undefined {
  if (ttl === undefined || ttl === 0) return undefined;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) {
    throw new RedisCacheConfigError(
      `CACHE_MANAGER.${method}: ttl must be milliseconds (a positive number), got ${String(ttl)}`,
    );
  }
  return `${Math.max(1, Math.round(ttl))}ms`;
}
