import type { CacheEventPublisher } from '../../events/cache-event-publisher.js';
import type { ResolvedCacheConfig } from '../../options/resolve-options.js';
import type { CacheCodec } from '../../serialization/cache-codec.js';
import type { NotStored, PreparedEntry, WritePolicy } from '../cache-engine.types.js';
import { FAILED, type FailOpenStore } from '../fail-open-store.js';
import type { CacheInvalidation } from '../invalidation/cache-invalidation.js';
import type { CacheTags } from '../invalidation/cache-tags.js';
import type { InvalidationEpoch } from '../invalidation/invalidation-epoch.js';
import type { OnceWarnings } from '../once-warnings.js';
import type { PrefixGenerations } from '../invalidation/prefix-generations.js';
import { prepareEntry } from './entry-preparation.js';

/** What the writer needs of the running cache. */
export interface EntryWriterParts {
  config: ResolvedCacheConfig;
  codec: CacheCodec;
  store: FailOpenStore;
  events: CacheEventPublisher;
  warnings: OnceWarnings;
  epoch: InvalidationEpoch;
  tags: CacheTags;
  prefixes: PrefixGenerations;
  invalidation: CacheInvalidation;
  /** Deletes a key whose new value cannot be stored (an eviction: loads in flight are superseded). */
  evict: (redisKeys: readonly string[], name: string) => Promise<unknown>;
  /** A key holding something the cache did not write: counted, logged once. */
  foreignKey: (redisKey: string, name: string) => void;
}

/**
 * Writes entries: the invalidation epoch taken before a value is made (it orders the write against
 * others of its key and against tag invalidations), the entry prepared from the value (TTL, jitter,
 * tags, encoding: entry-preparation.ts), and the write itself, which never lands over a write or
 * eviction that began after it. A write that cannot be stored deletes the old value instead; a
 * failure is counted and the key deleted once Redis answers again.
 */
export class EntryWriter {
  constructor(private readonly parts: EntryWriterParts) {}

  /**
   * The epoch a load of `redisKey` records, taken before the source is read: the one read from Redis
   * for a tagged value (undefined when that failed: `prepare` then stores nothing), otherwise, with
   * no round trip, the newest prefix marker over the key this instance knows of (see
   * PrefixGenerations.floor), or read from Redis too until the markers were read once.
   */
  loadEpoch(redisKey: string, policy: WritePolicy): number | Promise<number | undefined> {
    const floor = policy.tagsOf === undefined ? this.parts.prefixes.floor(redisKey) : undefined;
    return floor ?? this.readEpoch();
  }

  /**
   * The invalidation epoch now, read before a write's method or a tagged load's source runs;
   * undefined when Redis failed. Not counted here: a tagged value without it is not stored
   * (`prepare` counts that), and a write without it deletes the entry it finds (it cannot tell
   * whether that entry is newer).
   */
  readEpoch(): Promise<number | undefined> {
    return this.parts.store.quietly(() => this.parts.epoch.read());
  }

  /** The entry to store for `value` under `policy`: see `prepareEntry`. */
  prepare(
    value: unknown,
    policy: WritePolicy,
    name: string,
    loadMs: number,
    epoch: number | undefined,
  ): Promise<PreparedEntry | NotStored> {
    const { config, codec, tags, store, events, warnings } = this.parts;
    return prepareEntry({ config, codec, tags, store, events, warnings }, value, policy, name, loadMs, epoch);
  }

  /**
   * Encodes and stores `value` under the policy; never throws for cache failures. Resolves to
   * false when the cache failed (counted), true when the value was stored or deliberately not.
   * `epoch`: read before the value was made (undefined: that read failed).
   */
  async write(
    redisKey: string,
    value: unknown,
    policy: WritePolicy,
    name: string,
    loadMs: number,
    epoch: number | undefined,
  ): Promise<boolean> {
    const { store, invalidation } = this.parts;
    // Recorded in the entry: the epoch read before the method ran, or (it failed) a lower bound.
    const recorded = policy.tagsOf ? epoch : (epoch ?? this.parts.prefixes.floor(redisKey));
    const prepared = await this.prepare(value, policy, name, loadMs, recorded);
    if (prepared === 'skip') return true;
    if (prepared === 'failed' || prepared === 'invalidated') {
      // The new value cannot be stored (or a tag of it was invalidated while it was made), so the
      // old one must not stay behind it (nor a load in flight land after it): the key is deleted,
      // as an eviction would.
      await this.parts.evict([redisKey], name);
      return prepared === 'invalidated';
    }
    const outcome = await store.attempt(
      name,
      'write',
      redisKey,
      // Without the epoch the write cannot tell an entry written after it began: start 0 deletes any.
      () =>
        invalidation.announced([redisKey], (announce) =>
          store.store.write(redisKey, prepared.bytes, prepared.pxMs, epoch ?? 0, announce),
        ),
      // The old value is still there, and older than this write: delete it once Redis is back.
      (err) => invalidation.later([redisKey], err),
    );
    if (outcome === FAILED) return false;
    if (outcome !== 'foreign') return true;
    this.parts.foreignKey(redisKey, name);
    return false;
  }
}
