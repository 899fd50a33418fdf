import { Injectable } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { CacheEngine } from './core/cache-engine.js';
import type { CacheStatus } from './core/cache-status.js';
import { checkPrefix } from './core/invalidation/prefix-generations.js';
import { RunningOperations, type ManualOperations } from './core/manual-operations.js';
import { NOT_RUNNING } from './core/not-running.js';
import { RedisCacheConfigError } from './errors.js';
import type { CacheEventPublisher } from './events/cache-event-publisher.js';
import type { CacheStats } from './metrics/cache-stats.interface.js';
import type { CacheLoadOptions, CacheRetentionOptions } from './options/cache-load-options.interface.js';
import type { DurationString } from './options/duration.js';
import type { TtlOption } from './options/redis-cache-options.interface.js';

/** Options of `CacheService.set` (and `getOrSet`'s TTL). */
export interface CacheSetOptions extends CacheRetentionOptions {
  /** Seconds, a duration (`'5m'`) or a `ttlProfiles` name; default the module's `ttl`. */
  ttl?: TtlOption;
  /** Tags of the value, for `invalidateTags` (hashed when long or unusual, like keys). */
  tags?: string | readonly string[];
}

/** Options of `CacheService.getOrSet`: the TTL, and the same load options as `@Cacheable`. */
export interface CacheGetOrSetOptions<T = unknown> extends Omit<CacheSetOptions, 'tags'>, CacheLoadOptions {
  /** Metrics name of these calls; default `'CacheService.getOrSet'`. */
  name?: string;
  /** Tags of the loaded value: strings, or a function of the value returning them. */
  tags?: string | readonly string[] | ((value: T) => string | readonly string[]);
  /**
   * The module's in-process tier for this call (see `L1Options`): `false` to skip it, `{ ttl }` to keep
   * this value a different time. Default: used when the module has `l1`.
   */
  l1?: boolean | { ttl?: number | DurationString };
}

/**
 * Manual cache access for what decorators don't cover: invalidation from an admin endpoint or an
 * event handler, computed entries, stats. Keys are logical keys (the namespace is added for you).
 * Like the decorators it fails open: a Redis failure makes `get` return `undefined`, `set` do
 * nothing, `del`/`clear` return 0, and is counted in `stats().errors`. It never throws for a cache
 * failure; only a programming error (an unknown TTL profile) throws. Before `app.init()` and after
 * `app.close()` it answers the same way, uncounted (core/not-running.ts).
 *
 * @example
 * constructor(private readonly cache: CacheService) {}
 *
 * async onUserRenamed(id: number) {
 *   await this.cache.del(`user:${id}`);
 * }
 */
@Injectable()
export class CacheService {
  private readonly running: RunningOperations;

  constructor(private readonly engine: CacheEngine) {
    this.running = new RunningOperations(engine);
  }

  /** Who answers now: the running cache, or the stand-in while it is not running (core/not-running.ts). */
  private get operations(): ManualOperations {
    return this.engine.isStarted ? this.running : NOT_RUNNING;
  }

  /** The raw ioredis client, for native Redis types. Available from `app.init()` on. */
  get client(): Redis | Cluster {
    return this.engine.store.client;
  }

  /**
   * The cached value, or `undefined` when absent, past its TTL (a value kept for stale readers is
   * not returned here), being loaded, or when the cache failed.
   */
  get<T>(key: string): Promise<T | undefined> {
    const refused = keyRefusal(key, 'CacheService.get');
    if (refused) return Promise.reject(refused);
    return this.operations.get<T>(key);
  }

  /**
   * `get` of many keys in one round trip: the values in the order of `keys` (duplicates allowed),
   * `undefined` where `get` would answer it. One MGET (on a Cluster, one per hash slot, sent to
   * every node at once); an empty list answers `[]` without asking Redis.
   *
   * @example
   * const [alice, bob] = await this.cache.getMany<User>(['user:1', 'user:2']);
   */
  async getMany<T>(keys: readonly string[]): Promise<Array<T | undefined>> {
    checkKeyList(keys, 'CacheService.getMany');
    return this.operations.getMany<T>(keys);
  }

  /** Stores `value` with a TTL (always; jittered). Resolves when the write is done. */
  set<T>(key: string, value: T, options: CacheSetOptions = {}): Promise<void> {
    const refused = keyRefusal(key, 'CacheService.set');
    if (refused) return Promise.reject(refused);
    return this.operations.set(key, value, options);
  }

  /**
   * Invalidates every entry with one of `tags`, whatever their number: one epoch and one key per tag
   * are written, no entry is touched (they are checked when read). Resolves when it is done.
   *
   * @example
   * await this.cache.invalidateTags([`author:${post.authorId}`, 'posts:latest']);
   */
  invalidateTags(tags: string | readonly string[]): Promise<void> {
    return this.operations.invalidateTags(tags);
  }

  /** Deletes entries; resolves to how many existed. */
  del(...keys: string[]): Promise<number> {
    const refused = keys.map((key) => keyRefusal(key, 'CacheService.del')).find(Boolean);
    if (refused) return Promise.reject(refused);
    return this.operations.del(keys);
  }

  /**
   * The cached value, or else `loader()`'s result, stored before this resolves. Concurrent calls
   * for one key share one load: in this process by joining it, across processes through the key's
   * lease (`lock`). A loader that rejects stores nothing; its error reaches every caller waiting in
   * this process (unless a value within `grace` answers instead), and waiters in other processes run
   * their own loader. Takes the same load options as `@Cacheable`.
   */
  getOrSet<T>(key: string, loader: () => Promise<T>, options: CacheGetOrSetOptions<T> = {}): Promise<T> {
    const refused = keyRefusal(key, 'CacheService.getOrSet');
    if (refused) return Promise.reject(refused);
    return this.operations.getOrSet(key, loader, options);
  }

  /**
   * Invalidates every entry under the namespace, or under `${namespace}:${prefix}` (the prefix is
   * literal, not hashed), in O(1) whatever their number: a new generation for the prefix, and the
   * entries are left to expire by their TTL (`reclaim` deletes them). Resolves once no process on
   * this Redis will serve them any more — this one at once, the others when the published marker
   * reaches them (see the README). Resolves to 1, the prefixes cleared; to 0 when the cache failed
   * (counted, and the clear replayed once Redis answers again) or is not running.
   *
   * @example
   * await this.cache.clear('posts:');
   */
  async clear(prefix = ''): Promise<number> {
    checkPrefix(prefix, 'CacheService.clear');
    return this.operations.clear(prefix);
  }

  /**
   * Deletes every key under the namespace, or under `${namespace}:${prefix}`, with SCAN and pipelined
   * UNLINK in batches (never KEYS): memory reclamation, e.g. after a `clear`. Resolves to how many
   * were deleted.
   */
  async reclaim(prefix = ''): Promise<number> {
    checkPrefix(prefix, 'CacheService.reclaim');
    return this.operations.reclaim(prefix);
  }

  /**
   * Where this cache's calls are recorded and published (the HTTP interceptor records through it).
   * @internal
   */
  get events(): CacheEventPublisher {
    return this.engine.events;
  }

  /**
   * How the cache stands now: running, Redis up or down in its own view, its subscription live, the
   * in-process tier serving, invalidations held back by an outage. For readiness probes, and for
   * tests that wait for the cache rather than sleep.
   *
   * @example
   * await waitUntil(() => cache.status().l1 === 'serving');
   */
  status(): CacheStatus {
    return this.engine.status();
  }

  /** Hits, misses, hit rate, errors and latency, overall, per cache name and per HTTP route. */
  stats(): CacheStats {
    return this.engine.metrics.stats();
  }
}

/**
 * The error for what is not a logical key (a number, say: an id passed where `user:${id}` was meant),
 * a programming error refused like an unknown TTL profile, whether or not the cache runs; else undefined.
 */
function keyRefusal(key: unknown, where: string): RedisCacheConfigError | undefined {
  if (typeof key === 'string') return undefined;
  return new RedisCacheConfigError(`${where}: a key is a string (a logical key), got ${typeof key}`);
}

/** Refuses what is not a list of keys: a programming error, thrown like an unknown TTL profile. */
function checkKeyList(keys: unknown, where: string): void {
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string')) {
    throw new RedisCacheConfigError(`${where}: keys must be an array of strings (logical keys)`);
  }
}
