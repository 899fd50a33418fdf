import { RedisCacheConfigError } from '../errors.js';
import type { CacheMetrics } from '../metrics/cache-metrics.js';
import type { CacheOutcome } from '../metrics/cache-outcome.js';
import type { ResolvedCacheConfig } from '../options/resolve-options.js';
import type { CacheCodec } from '../serialization/cache-codec.js';
import type { RedisCacheStore } from '../store/redis-cache.store.js';
import { safeKey } from './key-hash.js';
import { SingleFlight, type Flight } from './single-flight.js';

/** How one value is written: its TTL, negative caching, and the veto of `unless`. */
export interface WritePolicy {
  ttlMs: number;
  /** Store `null`/`undefined` (with `nullTtl`). Default true. */
  cacheNull?: boolean;
  /** When it returns true the value is returned but not stored. */
  unless?: (value: unknown) => boolean;
}

/** What a delete or clear did. */
export interface Removal {
  removed: number;
  /** The cache failed (and the failure was counted): `removed` is then 0. */
  failed: boolean;
}

export interface LoadResult<T> {
  value: T;
  outcome: Extract<CacheOutcome, 'hit' | 'miss' | 'error'>;
}

interface Started {
  config: ResolvedCacheConfig;
  store: RedisCacheStore;
  isDown: () => boolean;
}

/**
 * The cache's key-level operations for one application: read with decode, write with TTL and jitter,
 * delete, clear, and read-or-load with single-flight. Every cache failure is counted under the
 * caller's name and swallowed (fail open); errors of the caller's own loader pass through untouched.
 * Until `start()` (during `app.init()`) and after `stop()` it holds no store and callers bypass it.
 */
export class CacheEngine {
  private started: Started | undefined;
  /** Kept after stop(), so a call in flight while the app closes still builds its keys. */
  private namespace = '';
  private readonly flights = new SingleFlight<LoadResult<unknown>>();
  private readonly warnedSerialization = new Set<string>();

  constructor(
    readonly metrics: CacheMetrics,
    private readonly codec: CacheCodec,
    private readonly warn: (message: string) => void,
  ) {}

  start(config: ResolvedCacheConfig, store: RedisCacheStore, isDown: () => boolean): void {
    this.started = { config, store, isDown };
    this.namespace = config.namespace;
  }

  stop(): void {
    this.started = undefined;
  }

  get isStarted(): boolean {
    return this.started !== undefined;
  }

  get config(): ResolvedCacheConfig {
    return this.require().config;
  }

  get store(): RedisCacheStore {
    return this.require().store;
  }

  /** The Redis key of a key the cache built itself (already safe): `${namespace}:${key}`. */
  redisKey(key: string): string {
    return `${this.namespace}:${key}`;
  }

  /** The Redis key of a key a user wrote by hand: unsafe parts hashed as decorators' keys are. */
  userKey(key: string): string {
    return this.redisKey(safeKey(key));
  }

  /**
   * The cached value for `redisKey`, or else the loader's (stored before this resolves). Concurrent
   * callers of one key in this process share one read and one load.
   */
  getOrLoad<T>(redisKey: string, loader: () => Promise<T>, policy: WritePolicy, name: string): Promise<LoadResult<T>> {
    return this.flights.run(redisKey, (flight) => this.readOrLoad(redisKey, loader, policy, name, flight)) as Promise<
      LoadResult<T>
    >;
  }

  /** `{ found, value }`; a failed read or an undecodable payload is `found: false, failed: true` (and counted). */
  async read(redisKey: string, name: string): Promise<{ found: boolean; value?: unknown; failed: boolean }> {
    const store = this.started?.store;
    if (!store) return { found: false, failed: false };
    let payload: Buffer | null;
    try {
      payload = await store.get(redisKey);
    } catch {
      this.metrics.recordError(name);
      return { found: false, failed: true };
    }
    if (payload === null) return { found: false, failed: false };
    try {
      return { found: true, value: this.codec.decode(payload), failed: false };
    } catch (err) {
      this.metrics.recordError(name);
      this.warnOnce(
        name,
        'decode',
        `${name}: undecodable cache payload at '${redisKey}' was deleted and treated as a miss`,
        err,
      );
      // Not through delete(): that would mark this very load as superseded and drop its write.
      await this.remove(name, (store) => store.unlink([redisKey]));
      return { found: false, failed: true };
    }
  }

  /**
   * Encodes and stores `value` under the policy; never throws for cache failures. Resolves to
   * false when the cache failed (counted), true when the value was stored or deliberately not.
   * A load of the same key already in flight in this process will not overwrite it.
   */
  write(redisKey: string, value: unknown, policy: WritePolicy, name: string): Promise<boolean> {
    this.flights.supersede(redisKey);
    return this.encodeAndSet(redisKey, value, policy, name);
  }

  private async encodeAndSet(redisKey: string, value: unknown, policy: WritePolicy, name: string): Promise<boolean> {
    if (policy.unless?.(value)) return true;
    const isNull = value === null || value === undefined;
    if (isNull && policy.cacheNull === false) return true;
    // Stopped while the method ran (the app is closing): there is no cache to write to.
    if (!this.started) return true;
    const { store, config } = this.started;
    let payload: Buffer;
    try {
      payload = this.codec.encode(value);
    } catch (err) {
      this.metrics.recordError(name);
      this.warnOnce(name, 'encode', `${name}: a result could not be encoded and was not cached`, err);
      return false;
    }
    const ttlMs = isNull ? config.nullTtlMs : policy.ttlMs;
    try {
      await store.set(redisKey, payload, ttlMs * (1 + config.jitter * Math.random()));
      return true;
    } catch {
      this.metrics.recordError(name);
      return false;
    }
  }

  /** Deletes the given Redis keys: how many existed, and whether the cache failed (counted). */
  async delete(redisKeys: readonly string[], name: string): Promise<Removal> {
    for (const key of redisKeys) this.flights.supersede(key);
    return this.remove(name, (store) => store.unlink(redisKeys));
  }

  /** Deletes every entry under `${namespace}:${prefix}` with SCAN + UNLINK. */
  async clear(prefix: string, name: string): Promise<Removal> {
    const literalPrefix = this.redisKey(prefix);
    this.flights.supersedePrefix(literalPrefix);
    return this.remove(name, (store) => store.scanAndUnlink(literalPrefix));
  }

  private async remove(name: string, removeWith: (store: RedisCacheStore) => Promise<number>): Promise<Removal> {
    const store = this.started?.store;
    if (!store) return { removed: 0, failed: false };
    try {
      return { removed: await removeWith(store), failed: false };
    } catch {
      this.metrics.recordError(name);
      return { removed: 0, failed: true };
    }
  }

  private async readOrLoad<T>(
    redisKey: string,
    loader: () => Promise<T>,
    policy: WritePolicy,
    name: string,
    flight: Flight<LoadResult<unknown>>,
  ): Promise<LoadResult<T>> {
    const cached = await this.read(redisKey, name);
    if (cached.found) return { value: cached.value as T, outcome: 'hit' };
    const value = await loader();
    // Not stored when a write or eviction of this key happened while the loader ran (it wins: the
    // loaded value may predate it), nor during an outage, where the read already failed and was
    // counted: no second timeout for the caller. A write on its own (@CachePut, CacheService.set)
    // still tries, and counts its failure.
    const skip = flight.superseded || (cached.failed && this.started?.isDown());
    if (!skip) await this.encodeAndSet(redisKey, value, policy, name);
    return { value, outcome: cached.failed ? 'error' : 'miss' };
  }

  private require(): Started {
    if (!this.started) {
      throw new RedisCacheConfigError('The cache is not started: RedisCacheModule starts it during app.init()');
    }
    return this.started;
  }

  /** Logs the first encode or decode failure per name; later ones are only counted in stats. */
  private warnOnce(name: string, direction: 'encode' | 'decode', message: string, err: unknown): void {
    const seen = `${name}|${direction}`;
    if (this.warnedSerialization.has(seen)) return;
    this.warnedSerialization.add(seen);
    this.warn(
      `${message} (${err instanceof Error ? err.message : String(err)}); further ones for ${name} are only counted`,
    );
  }
}
