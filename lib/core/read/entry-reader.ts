import type { CacheEventPublisher } from '../../events/cache-event-publisher.js';
import type { CacheCodec } from '../../serialization/cache-codec.js';
import { DecodedEntry, decodeEntry, LEASED, NOTHING, READ_FAILED, type EntryRead } from '../cache-entry.js';
import { FAILED, type FailOpenStore } from '../fail-open-store.js';
import type { CacheTags } from '../invalidation/cache-tags.js';
import type { PrefixGenerations } from '../invalidation/prefix-generations.js';

/** What the reader needs of the running cache. */
export interface EntryReaderParts {
  store: FailOpenStore;
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
 * failure; a failed GET, or tags and prefixes that cannot be checked, are failures too (counted by the
 * fail-open boundary): an entry is never trusted unchecked. Whether the entry may answer is freshness.ts's to say.
 */
export class EntryReader {
  constructor(private readonly parts: EntryReaderParts) {}

  /** What `redisKey` holds. */
  read(redisKey: string, name: string): Promise<EntryRead> {
    return this.parts.store.read(redisKey, name, (payload) => {
      if (payload === FAILED) return READ_FAILED;
      const read = this.decode(redisKey, name, payload);
      return read instanceof DecodedEntry ? { entry: read, leased: false, failed: false } : read;
    });
  }

  /**
   * What each of `redisKeys` holds, in order, from one read (MGET per slot), every reply through
   * `decode` as `read`'s is. A failed read fails every key (counted once).
   */
  readMany(redisKeys: readonly string[], name: string): Promise<EntryRead[]> {
    return this.parts.store.readMany(redisKeys, name, (payloads) => {
      if (payloads === FAILED) return redisKeys.map(() => READ_FAILED);
      let pending = false;
      const reads = payloads.map((payload, i) => {
        const read = this.decode(redisKeys[i], name, payload);
        if (read instanceof DecodedEntry) return { entry: read, leased: false, failed: false };
        if (read instanceof Promise) pending = true;
        return read;
      });
      // Tagged entries checked against Redis, garbage being deleted: wait for those.
      return pending ? Promise.all(reads) : (reads as EntryRead[]);
    });
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
    return this.checked(stored, redisKey, name);
  }

  /**
   * An entry a lease's release message carried (lease-waiters.ts) for `redisKey`, decoded and checked
   * as `decode` checks a GET's reply; undefined when it does not decode to a value (the caller then
   * reads the key). Nothing is deleted or counted here: these bytes came by pub/sub, not from the key.
   */
  decodeCarried(redisKey: string, name: string, bytes: Buffer): DecodedEntry | Promise<EntryRead> | undefined {
    let stored;
    try {
      stored = decodeEntry(this.parts.codec, bytes);
    } catch {
      return undefined;
    }
    return stored.kind === 'entry' ? this.checked(stored, redisKey, name) : undefined;
  }

  /** A value read from `redisKey`, marked `invalidated` when a cleared prefix or a tag is newer than its load. */
  private checked(stored: DecodedEntry, redisKey: string, name: string): DecodedEntry | Promise<EntryRead> {
    const { prefixes } = this.parts;
    if (prefixes.active) {
      if (!prefixes.fresh) return this.checkPrefixesLater(stored, redisKey, name);
      if (prefixes.invalidates(redisKey, stored.epoch)) stored.invalidated = true;
    }
    return stored.tags.length === 0 || stored.invalidated ? stored : this.withTags(stored, redisKey, name);
  }

  /** A tagged entry, checked in memory when its tags' epochs are known there, else against Redis. */
  private withTags(entry: DecodedEntry, redisKey: string, name: string): DecodedEntry | Promise<EntryRead> {
    const valid = this.parts.tags.knownValid(entry);
    if (valid === undefined) return this.checkTags(entry, redisKey, name);
    entry.invalidated = !valid;
    return entry;
  }

  /** The subscription is down: the cleared prefixes are re-read before the entry is trusted. */
  private checkPrefixesLater(entry: DecodedEntry, redisKey: string, name: string): Promise<EntryRead> {
    const { prefixes, store } = this.parts;
    return store
      .attempt(name, 'read', redisKey, () => prefixes.refresh())
      .then((refreshed) => {
        if (refreshed === FAILED) return untrusted(entry);
        if (prefixes.invalidates(redisKey, entry.epoch)) entry.invalidated = true;
        if (entry.tags.length === 0 || entry.invalidated) return { entry, leased: false, failed: false };
        const checked = this.withTags(entry, redisKey, name);
        return checked instanceof DecodedEntry ? { entry: checked, leased: false, failed: false } : checked;
      });
  }

  /** A tagged entry, marked `invalidated` when a tag was invalidated after its load began. */
  private checkTags(entry: DecodedEntry, redisKey: string, name: string): Promise<EntryRead> {
    const { tags, store } = this.parts;
    return store
      .attempt(name, 'read', redisKey, () => tags.isValid(entry))
      .then((valid) => {
        if (valid === FAILED) return untrusted(entry);
        entry.invalidated = !valid;
        return { entry, leased: false, failed: false };
      });
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

/** What an entry whose tags or prefixes could not be checked reads as: failed, and never served. */
function untrusted(entry: DecodedEntry): EntryRead {
  entry.invalidated = true;
  return { entry, leased: false, failed: true };
}
