import type { Cluster, Redis } from 'ioredis';
import { RedisCacheConfigError } from '../errors.js';
import type { Announcement, CacheStore, LeaseAttempt, WriteOutcome } from '../store/cache-store.js';
import type { InProcessBus } from './in-process-bus.js';
import { InMemoryEntryScripts } from './in-memory-entry-scripts.js';
import { InMemoryInvalidationScripts } from './in-memory-invalidation-scripts.js';
import { InMemoryKeyspace } from './in-memory-keyspace.js';
import type { TestClock } from './test-clock.js';

/**
 * The cache's store without Redis: RedisCacheTestingModule's. Each method does what the Lua script or
 * command behind RedisCacheStore's does (ported in in-memory-entry-scripts.ts and
 * in-memory-invalidation-scripts.ts) on an in-process keyspace whose time is a TestClock; what the
 * scripts publish goes through an in-process bus. The contract suite (test/contract) runs the same
 * tests against both stores.
 *
 * With `retain: false` (the testing module's `disabled`) no value is ever stored.
 */
export class InMemoryCacheStore implements CacheStore {
  private readonly keyspace: InMemoryKeyspace;
  private readonly entries: InMemoryEntryScripts;
  private readonly invalidations: InMemoryInvalidationScripts;

  constructor(
    clock: TestClock,
    private readonly bus: InProcessBus,
    retain = true,
  ) {
    this.keyspace = new InMemoryKeyspace(clock);
    this.entries = new InMemoryEntryScripts(this.keyspace, clock, bus, retain);
    this.invalidations = new InMemoryInvalidationScripts(this.keyspace, clock, bus);
  }

  get client(): Redis | Cluster {
    throw new RedisCacheConfigError(
      'CacheService.client is not available in RedisCacheTestingModule: it runs without Redis. ' +
        'A test that needs native Redis commands needs a Redis (RedisCacheModule.forRoot)',
    );
  }

  whenReady(): Promise<boolean> {
    return Promise.resolve(true);
  }

  get(key: string): Promise<Buffer | null> {
    return run(() => this.entries.get(key));
  }

  getMany(keys: readonly string[]): Promise<Array<Buffer | null>> {
    return run(() => keys.map((key) => this.entries.get(key)));
  }

  write(key: string, entry: Buffer, ttlMs: number, startEpoch: number, announce?: Announcement): Promise<WriteOutcome> {
    return run(() => this.entries.write(key, entry, ttlMs, startEpoch, announce));
  }

  /**
   * What another client's plain `SET key payload PX ttlMs` leaves: for tests of keys the cache did not
   * write (not part of CacheStore: the cache itself never writes without its guards).
   */
  plainSet(key: string, payload: Buffer, ttlMs: number): Promise<void> {
    return run(() => this.entries.plainSet(key, payload, ttlMs));
  }

  acquireLease(key: string, token: Buffer, ttlMs: number, expectStamp: Buffer | ''): Promise<LeaseAttempt> {
    return run(() => this.entries.acquireLease(key, token, ttlMs, expectStamp));
  }

  completeLease(
    key: string,
    token: Buffer,
    entry: Buffer | undefined,
    ttlMs: number,
    channel: string,
  ): Promise<boolean> {
    return run(() => this.entries.completeLease(key, token, entry, ttlMs, channel));
  }

  readEpoch(epochKey: string): Promise<number> {
    return run(() => this.invalidations.readEpoch(epochKey));
  }

  invalidateTags(
    epochKey: string,
    tagKeys: readonly string[],
    markerTtlMs: number,
    announcements?: ReadonlyArray<{ channel: string; head: string; tail: string }>,
  ): Promise<number> {
    return run(() => this.invalidations.invalidateTags(epochKey, tagKeys, markerTtlMs, announcements));
  }

  admitTags(epochKey: string, tagKeys: readonly string[], ttlMs: number, loadEpoch: number): Promise<boolean> {
    return run(() => this.invalidations.admitTags(epochKey, tagKeys, ttlMs, loadEpoch));
  }

  markPrefix(
    epochKey: string,
    markersKey: string,
    prefix: string,
    options: { retentionMs: number; cap: number; channel: string },
  ): Promise<{ epoch: number; prefix: string }> {
    return run(() => this.invalidations.markPrefix(epochKey, markersKey, prefix, options));
  }

  readPrefixes(
    epochKey: string,
    markersKey: string,
    retentionMs: number,
    channel: string,
  ): Promise<{ clock: number; markers: Array<[string, number]> }> {
    return run(() => this.invalidations.readPrefixes(epochKey, markersKey, retentionMs, channel));
  }

  publish(channel: string, message: string): Promise<void> {
    return run(() => void this.bus.publish(channel, message));
  }

  publishPlain(channel: string, message: string): Promise<void> {
    return run(() => void this.bus.publish(channel, message));
  }

  exists(key: string): Promise<boolean> {
    return run(() => this.keyspace.exists(key));
  }

  mark(key: string, ttlMs: number, generation: string): Promise<string> {
    return run(() => {
      // RENEW_MARKER (store/marker-script.ts): renewed with the generation it holds, or written with this one.
      const held = this.keyspace.type(key) === 'string' ? this.keyspace.get(key)!.toString() : generation;
      this.keyspace.set(key, held, { px: Math.max(1, Math.round(ttlMs)) });
      return held;
    });
  }

  readTags(tagKeys: readonly string[]): Promise<Array<number | undefined>> {
    return run(() =>
      // MGET: nil for an absent key or one of another type.
      tagKeys.map((tagKey) =>
        this.keyspace.type(tagKey) === 'string' ? Number(this.keyspace.get(tagKey)!.toString()) : undefined,
      ),
    );
  }

  unlink(keys: readonly string[], announce?: Announcement): Promise<number> {
    return run(() => {
      let removed = 0;
      for (const key of keys) if (this.keyspace.del(key)) removed++;
      if (announce) this.bus.publish(announce.channel, announce.message);
      return removed;
    });
  }

  evict(keys: readonly string[], tombstoneMs: number, announce?: Announcement): Promise<number> {
    return run(() => this.entries.evict(keys, tombstoneMs, announce));
  }

  scanAndUnlink(literalPrefix: string, spare: (key: string) => boolean = () => false): Promise<number> {
    return run(() => this.dropKeys((key) => key.startsWith(literalPrefix) && !spare(key)));
  }

  /** The keys that hold a value (an entry, leased or not), sorted: what `RedisCacheTesting.keys()` shows. */
  entryKeys(): string[] {
    return this.entries.entryKeys();
  }

  /** Deletes every key `drop` selects; returns how many. */
  dropKeys(drop: (key: string) => boolean): number {
    let removed = 0;
    for (const key of this.keyspace.keys()) if (drop(key) && this.keyspace.del(key)) removed++;
    this.entries.forgetStamps();
    return removed;
  }

  /** Forgets expired keys (after the clock moved). */
  sweep(): void {
    this.keyspace.sweep();
    this.entries.forgetStamps();
  }
}

/** Runs a command as the store's Promise API does: a synchronous failure (WRONGTYPE) rejects. */
function run<T>(command: () => T): Promise<T> {
  try {
    return Promise.resolve(command());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
