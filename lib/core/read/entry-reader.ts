import type { CacheEventPublisher } from '../../events/cache-event-publisher.js';
import type { CacheCodec } from '../../serialization/cache-codec.js';
import type { CacheStore } from '../../store/cache-store.js';
import { DecodedEntry, decodeEntry, LEASED, NOTHING, READ_FAILED, type EntryRead } from '../cache-entry.js';
import type { CacheTags } from '../invalidation/cache-tags.js';
import type { PrefixGenerations } from '../invalidation/prefix-generations.js';

/** What the reader needs of the running cache. */
export interface EntryReaderParts {
  store: CacheStore;
  codec: CacheCodec;
  events: CacheEventPublisher;
  prefixes: PrefixGenerations;
  tags: CacheTags;
  /** Deletes an undecodable payload (announced like an eviction, but not superseding loads). */
  unlinkGarbage: (redisKey: string, name: string) => Promise<unknown>;
  /** Logs the first failure of a kind per name. */
  warnOnce: (name: string, topic: string, message: string, err: unknown) => void;
}

/**
 * Gets, decodes and validates what a key holds: a value (marked `invalidated` when a tag or a cleared
 * prefix is newer than its load), a lease, or nothing. What cannot be decoded is deleted and read as a
 * failure; a failed GET, or tags and prefixes that cannot be checked, are failures too (counted): an
 * entry is never trusted unchecked. Whether the entry may answer is freshness.ts's to say.
 */
export class EntryReader {
  constructor(private readonly parts: EntryReaderParts) {}

  /** What `redisKey` holds. */
  read(redisKey: string, name: string): Promise<EntryRead> {
    return this.parts.store.get(redisKey).then(
      (payload) => {
        const read = this.decode(redisKey, name, payload);
        return read instanceof DecodedEntry ? { entry: read, leased: false, failed: false } : read;
      },
      (err: unknown) => this.failed(name, redisKey, err),
    );
  }

  /**
   * What a GET's reply means: a value (returned as it is, so a hit allocates nothing more), a lease
   * or nothing; or, when it cannot be decoded, deleted and failed (see `read`).
   */
  decode(redisKey: string, name: string, payload: Buffer | null): DecodedEntry | EntryRead | Promise<EntryRead> {
    if (payload === null) return NOTHING;
    let stored;
    try {
      stored = decodeEntry(this.parts.codec, payload);
    } catch (err) {
      return this.undecodable(redisKey, name, err);
    }
    if (stored.kind === 'lease') return LEASED;
    // A tombstone (evicted), or the previous entry format: a miss, replaced by the next write.
    if (stored.kind !== 'entry') return NOTHING;
    const { prefixes } = this.parts;
    if (prefixes.active) {
      if (!prefixes.fresh) return this.checkPrefixesLater(stored, redisKey, name);
      if (prefixes.invalidates(redisKey, stored.epoch)) stored.invalidated = true;
    }
    return stored.tags.length === 0 || stored.invalidated ? stored : this.checkTags(stored, redisKey, name);
  }

  /** A failed GET (counted). */
  failed(name: string, redisKey: string, err: unknown): EntryRead {
    this.parts.events.failed(name, 'read', redisKey, err);
    return READ_FAILED;
  }

  /** The subscription is down: the cleared prefixes are re-read before the entry is trusted. */
  private checkPrefixesLater(entry: DecodedEntry, redisKey: string, name: string): Promise<EntryRead> {
    const { prefixes } = this.parts;
    return prefixes.refresh().then(
      () => {
        if (prefixes.invalidates(redisKey, entry.epoch)) entry.invalidated = true;
        if (entry.tags.length === 0 || entry.invalidated) return { entry, leased: false, failed: false };
        return this.checkTags(entry, redisKey, name);
      },
      (err: unknown) => this.untrusted(entry, redisKey, name, err),
    );
  }

  /** A tagged entry, marked `invalidated` when a tag was invalidated after its load began. */
  private checkTags(entry: DecodedEntry, redisKey: string, name: string): Promise<EntryRead> {
    return this.parts.tags.isValid(entry).then(
      (valid) => {
        entry.invalidated = !valid;
        return { entry, leased: false, failed: false };
      },
      (err: unknown) => this.untrusted(entry, redisKey, name, err),
    );
  }

  /** What an entry that could not be checked reads as: failed, and never served. */
  private untrusted(entry: DecodedEntry, redisKey: string, name: string, err: unknown): EntryRead {
    this.parts.events.failed(name, 'read', redisKey, err);
    entry.invalidated = true;
    return { entry, leased: false, failed: true };
  }

  private undecodable(redisKey: string, name: string, err: unknown): Promise<EntryRead> {
    const { events, warnOnce, unlinkGarbage } = this.parts;
    events.failed(name, 'decode', redisKey, err);
    warnOnce(
      name,
      'decode',
      `${name}: undecodable cache payload at '${redisKey}' was deleted and treated as a miss`,
      err,
    );
    return unlinkGarbage(redisKey, name).then(() => READ_FAILED);
  }
}
