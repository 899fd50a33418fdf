import type { CacheGetOrSetOptions, CacheSetOptions } from '../cache.service.js';
import { resolveL1Choice } from '../options/resolve-l1-options.js';
import { resolveLoadPolicy, resolveRetention } from '../options/resolve-load-options.js';
import { resolveTtl } from '../options/resolve-options.js';
import type { CacheEngine } from './cache-engine.js';
import { normalizeTags } from './invalidation/cache-tags.js';
import { L1_MISS, type L1Slot } from './l1/l1-slot.js';

/** `CacheService`'s operations, with its arguments checked; answered by the running cache or NOT_RUNNING. */
export interface ManualOperations {
  get<T>(key: string): Promise<T | undefined>;
  getMany<T>(keys: readonly string[]): Promise<Array<T | undefined>>;
  set<T>(key: string, value: T, options: CacheSetOptions): Promise<void>;
  del(keys: readonly string[]): Promise<number>;
  getOrSet<T>(key: string, loader: () => Promise<T>, options: CacheGetOrSetOptions<T>): Promise<T>;
  invalidateTags(tags: string | readonly string[]): Promise<void>;
  clear(prefix: string): Promise<number>;
  reclaim(prefix: string): Promise<number>;
}

/** The metrics name of CacheService's calls (getOrSet's unless it names its own). */
const SERVICE = 'CacheService';

/**
 * CacheService's operations on the running cache: keys made safe and namespaced, options resolved
 * against the module's, then the engine's pipeline (reads through its get-or-load handler, writes
 * through its ordered writer).
 */
export class RunningOperations implements ManualOperations {
  /** getOrSet's memory per `l1` option seen (the shared one, kept a given time). */
  private readonly l1Slots = new Map<string, L1Slot | undefined>();

  constructor(private readonly engine: CacheEngine) {}

  async get<T>(key: string): Promise<T | undefined> {
    const cached = await this.engine.read(this.engine.userKey(key), SERVICE);
    return cached.found ? (cached.value as T) : undefined;
  }

  async getMany<T>(keys: readonly string[]): Promise<Array<T | undefined>> {
    if (keys.length === 0) return [];
    const { fresh } = await this.engine.readMany(
      keys.map((key) => this.engine.userKey(key)),
      SERVICE,
    );
    return fresh.map((entry) => entry?.value as T | undefined);
  }

  async set<T>(key: string, value: T, options: CacheSetOptions): Promise<void> {
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

  async del(keys: readonly string[]): Promise<number> {
    const removal = await this.engine.delete(
      keys.map((key) => this.engine.userKey(key)),
      SERVICE,
    );
    return removal.removed;
  }

  async getOrSet<T>(key: string, loader: () => Promise<T>, options: CacheGetOrSetOptions<T>): Promise<T> {
    const name = options.name ?? 'CacheService.getOrSet';
    const l1 = this.l1Slot(options.l1);
    const redisKey = this.engine.userKey(key);
    const { reads, config } = this.engine;
    if (l1) {
      const kept = reads.fromL1({ name, l1 }, redisKey);
      if (kept !== L1_MISS) return kept as T;
    }
    const load = resolveLoadPolicy(options, config, 'CacheService.getOrSet');
    const site = { name, load, l1 };
    const ttlMs = resolveTtl(options.ttl, config, 'CacheService.getOrSet');
    const retainMs = Math.max(load.staleWhileRevalidateMs, load.graceMs);
    const write = { ttlMs, retainMs, tagsOf: tagsOf(options.tags, name) };
    return (await reads.load(site, redisKey, () => Promise.resolve().then(loader), write)).value;
  }

  async invalidateTags(tags: string | readonly string[]): Promise<void> {
    await this.engine.invalidateTags(tags, SERVICE);
  }

  async clear(prefix: string): Promise<number> {
    return (await this.engine.clear(prefix, SERVICE)).failed ? 0 : 1;
  }

  async reclaim(prefix: string): Promise<number> {
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
}

/** `getOrSet`'s tags as a write policy takes them; static tags are checked at once. */
function tagsOf<T>(tags: CacheGetOrSetOptions<T>['tags'], where: string): ((value: unknown) => unknown) | undefined {
  if (tags === undefined) return undefined;
  if (typeof tags === 'function') return (value) => tags(value as T);
  normalizeTags(tags, where);
  return () => tags;
}
