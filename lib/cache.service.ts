import { Injectable } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { CacheEngine } from './core/cache-engine.js';
import type { CacheEventPublisher } from './events/cache-event-publisher.js';
import { normalizeTags } from './core/invalidation/cache-tags.js';
import type { CacheStats } from './metrics/cache-stats.interface.js';
import type { CacheLoadOptions, CacheRetentionOptions } from './options/cache-load-options.interface.js';
import { L1_MISS, type L1Slot } from './core/l1/l1-slot.js';
import { checkPrefix } from './core/invalidation/prefix-generations.js';
import { resolveL1Choice } from './options/resolve-l1-options.js';
import { resolveLoadPolicy, resolveRetention } from './options/resolve-load-options.js';
import { resolveTtl } from './options/resolve-options.js';
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

const SERVICE = 'CacheService';

/**
 * Manual cache access for what decorators don't cover: invalidation from an admin endpoint or an
 * event handler, computed entries, stats. Keys are logical keys (the namespace is added for you).
 * Like the decorators it fails open: a Redis failure makes `get` return `undefined`, `set` do
 * nothing, `del`/`clear` return 0, and is counted in `stats().errors`. It never throws for a cache
 * failure; only a programming error (an unknown TTL profile) throws.
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
  /** getOrSet's memory per `l1` option seen (the shared one, kept a given time). */
  private readonly l1Slots = new Map<string, L1Slot | undefined>();

  constructor(private readonly engine: CacheEngine) {}

  /** The raw ioredis client, for native Redis types. Available from `app.init()` on. */
  get client(): Redis | Cluster {
    return this.engine.store.client;
  }

  /**
   * The cached value, or `undefined` when absent, past its TTL (a value kept for stale readers is
   * not returned here), being loaded, or when the cache failed.
   */
  async get<T>(key: string): Promise<T | undefined> {
    if (!this.engine.isStarted) return undefined;
    const cached = await this.engine.read(this.engine.userKey(key), SERVICE);
    return cached.found ? (cached.value as T) : undefined;
  }

  /** Stores `value` with a TTL (always; jittered). Resolves when the write is done. */
  async set<T>(key: string, value: T, options: CacheSetOptions = {}): Promise<void> {
    if (!this.engine.isStarted) return;
    const ttlMs = resolveTtl(options.ttl, this.engine.config, 'CacheService.set');
    const retention = resolveRetention(options, 'CacheService.set');
    const retainMs = Math.max(retention.staleWhileRevalidateMs, retention.graceMs);
    const { tags } = options;
    if (tags !== undefined) normalizeTags(tags, 'CacheService.set'); // the caller's error, before anything is read
    const redisKey = this.engine.userKey(key);
    const policy = { ttlMs, retainMs, tagsOf: tags === undefined ? undefined : () => tags };
    // When the write began: it orders this write against others of the key (docs/lease-protocol.md, "Writes, evictions and the horizon").
    const epoch = await this.engine.readEpoch();
    await this.engine.write(redisKey, value, policy, SERVICE, 0, epoch);
  }

  /**
   * Invalidates every entry with one of `tags`, whatever their number: one epoch and one key per tag
   * are written, no entry is touched (they are checked when read). Resolves when it is done.
   *
   * @example
   * await this.cache.invalidateTags([`author:${post.authorId}`, 'posts:latest']);
   */
  async invalidateTags(tags: string | readonly string[]): Promise<void> {
    if (!this.engine.isStarted) return;
    await this.engine.invalidateTags(tags, SERVICE);
  }

  /** Deletes entries; resolves to how many existed. */
  async del(...keys: string[]): Promise<number> {
    if (!this.engine.isStarted) return 0;
    return (
      await this.engine.delete(
        keys.map((key) => this.engine.userKey(key)),
        SERVICE,
      )
    ).removed;
  }

  /**
   * The cached value, or else `loader()`'s result, stored before this resolves. Concurrent calls
   * for one key share one load: in this process by joining it, across processes through the key's
   * lease (`lock`). A loader that rejects stores nothing; its error reaches every caller waiting in
   * this process (unless a value within `grace` answers instead), and waiters in other processes run
   * their own loader. Takes the same load options as `@Cacheable`.
   */
  async getOrSet<T>(key: string, loader: () => Promise<T>, options: CacheGetOrSetOptions<T> = {}): Promise<T> {
    if (!this.engine.isStarted) return loader();
    const name = options.name ?? 'CacheService.getOrSet';
    const l1 = this.l1Slot(options.l1);
    const redisKey = this.engine.userKey(key);
    const { reads } = this.engine;
    if (l1) {
      const kept = reads.fromL1({ name, l1 }, redisKey);
      if (kept !== L1_MISS) return kept as T;
    }
    const load = resolveLoadPolicy(options, this.engine.config, 'CacheService.getOrSet');
    const site = { name, load, l1 };
    const ttlMs = resolveTtl(options.ttl, this.engine.config, 'CacheService.getOrSet');
    const retainMs = Math.max(load.staleWhileRevalidateMs, load.graceMs);
    const write = { ttlMs, retainMs, tagsOf: tagsOf(options.tags, name) };
    return (await reads.load(site, redisKey, () => Promise.resolve().then(loader), write)).value;
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
    if (!this.engine.isStarted) return 0;
    return (await this.engine.clear(prefix, SERVICE)).failed ? 0 : 1;
  }

  /**
   * Deletes every key under the namespace, or under `${namespace}:${prefix}`, with SCAN and pipelined
   * UNLINK in batches (never KEYS): memory reclamation, e.g. after a `clear`. Resolves to how many
   * were deleted.
   */
  async reclaim(prefix = ''): Promise<number> {
    checkPrefix(prefix, 'CacheService.reclaim');
    if (!this.engine.isStarted) return 0;
    return (await this.engine.reclaim(prefix, SERVICE)).removed;
  }

  /** The module's in-process memory for a getOrSet `l1` option; throws for one it cannot serve. */
  private l1Slot(option: CacheGetOrSetOptions['l1']): L1Slot | undefined {
    const id =
      typeof option === 'object' && option !== null
        ? `ttl:${String(option.ttl)} max:${String((option as { max?: unknown }).max)}`
        : String(option);
    if (this.l1Slots.has(id)) return this.l1Slots.get(id);
    const choice = resolveL1Choice(option, this.engine.config.l1, 'CacheService.getOrSet', { ownAllowed: false });
    const slot = this.engine.l1Slot(choice);
    this.l1Slots.set(id, slot);
    return slot;
  }

  /**
   * Where this cache's calls are recorded and published (the HTTP interceptor records through it).
   * @internal
   */
  get events(): CacheEventPublisher {
    return this.engine.events;
  }

  /** Hits, misses, hit rate, errors and latency, overall, per cache name and per HTTP route. */
  stats(): CacheStats {
    return this.engine.metrics.stats();
  }
}

/** `getOrSet`'s tags as a write policy takes them; static tags are checked at once. */
function tagsOf<T>(tags: CacheGetOrSetOptions<T>['tags'], where: string): ((value: unknown) => unknown) | undefined {
  if (tags === undefined) return undefined;
  if (typeof tags === 'function') return (value) => tags(value as T);
  normalizeTags(tags, where);
  return () => tags;
}
