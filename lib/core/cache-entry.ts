import { randomBytes } from 'node:crypto';
import { CacheSerializationError } from '../errors.js';
import type { CacheCodec } from '../serialization/cache-codec.js';
import { PAYLOAD_MAGIC } from '../serialization/payload-header.js';

/**
 * What one Redis key of the cache holds: a header, then (for an entry) the codec's payload.
 *
 *   byte 0       0xC1, the byte MessagePack never uses (see payload-header.ts)
 *   byte 1       kind: ENTRY (a value), TAGGED_ENTRY (a value with tags) or LEASE (a placeholder:
 *                a load of this key is running)
 *   bytes 2-9    lease token: who may replace this key with a loaded value; zeros when none
 *   bytes 10-17  lease deadline, ms since the epoch on Redis's clock (float64 BE); 0 when none
 *   bytes 18-25  fresh until, ms since the epoch on the writer's clock (float64 BE)
 *   bytes 26-29  how long the load that produced the value took, ms (float32 BE): XFetch's delta
 *   bytes 30-    the codec's payload (ENTRY)
 *
 * A TAGGED_ENTRY has, between the header and the payload, what its tags need (see tag-validity.ts):
 *
 *   bytes 30-37  the invalidation epoch read before the value was loaded (float64 BE)
 *   bytes 38-39  the number of tags (uint16 BE), then each tag: length (uint16 BE) and UTF-8 bytes
 *
 * The lease lives in the entry's own key, so a value and its lock can never be on different Cluster
 * slots, and a `@CachePut` (which overwrites the key) or an eviction (which deletes it) revokes the
 * lease of a load in flight: that load's compare-and-set then finds another token and drops its
 * possibly stale value. The Lua scripts in store/lease-scripts.ts read the same offsets.
 */
export const ENTRY_KIND = 0x02;
export const LEASE_KIND = 0x03;
export const TAGGED_ENTRY_KIND = 0x04;
export const TOKEN_OFFSET = 2;
export const TOKEN_LENGTH = 8;
export const FRESH_UNTIL_OFFSET = 18;
export const LOAD_MS_OFFSET = 26;
export const ENTRY_HEADER_LENGTH = 30;
const EPOCH_OFFSET = 30;
const TAG_COUNT_OFFSET = 38;
/** More tags on one entry than this is a configuration mistake, refused when the entry is written. */
export const MAX_TAGS = 64;

/** The tags of an entry that has none. */
export const NO_TAGS: readonly string[] = Object.freeze([]);

/** The invalidation state a tagged value was loaded in: the epoch before the load and the value's tags. */
export interface EntryTags {
  epoch: number;
  tags: readonly string[];
}

/** A decoded value with its freshness. */
export class DecodedEntry {
  readonly kind = 'entry';
  /**
   * Set once the entry is known to be under a tag invalidated after it was loaded: it is then never
   * served (not as a hit, not stale, not as a grace fallback), only replaced.
   */
  invalidated = false;

  constructor(
    readonly value: unknown,
    /** Ms since the epoch (writer's clock) until which the value is fresh. */
    readonly freshUntil: number,
    /** How long the load that produced it took (XFetch's delta). */
    readonly loadMs: number,
    private readonly stored: Buffer,
    /** Its tags (keys of tag-validity.ts), NO_TAGS for an untagged entry. */
    readonly tags: readonly string[] = NO_TAGS,
    /** The invalidation epoch read before its load; 0 for an untagged entry. */
    readonly epoch = 0,
  ) {}

  /**
   * Identifies this version of the entry to the lease script (a refresh leases only the version it
   * saw). A getter: only a refresh needs it, and every hit decodes an entry.
   */
  get stamp(): Buffer {
    return this.stored.subarray(FRESH_UNTIL_OFFSET, LOAD_MS_OFFSET);
  }
}

/** What a read found: a value, a lease placeholder (a load is running), nothing, or a failure (counted). */
export interface EntryRead {
  entry?: DecodedEntry;
  leased: boolean;
  failed: boolean;
}

/** Nothing under the key. */
export const NOTHING: EntryRead = Object.freeze({ leased: false, failed: false });
/** A lease placeholder: a load of the key is running. */
export const LEASED: EntryRead = Object.freeze({ leased: true, failed: false });
/** The read failed, or the payload could not be decoded (and was counted). */
export const READ_FAILED: EntryRead = Object.freeze({ leased: false, failed: true });

/** A decoded key: a value with its freshness, or a lease placeholder. */
export type StoredEntry = DecodedEntry | { kind: 'lease' };

const LEASE = Object.freeze({ kind: 'lease' as const });

/**
 * Encodes a value with its freshness metadata and no lease; with `tagged`, as a TAGGED_ENTRY.
 * Throws `CacheSerializationError`.
 */
export function encodeEntry(
  codec: CacheCodec,
  value: unknown,
  freshUntil: number,
  loadMs: number,
  tagged?: EntryTags,
): Buffer {
  const payload = codec.encode(value);
  const tagBytes = tagged ? tagged.tags.map((tag) => Buffer.from(tag, 'utf8')) : undefined;
  const headerLength = tagBytes
    ? TAG_COUNT_OFFSET + 2 + tagBytes.reduce((sum, tag) => sum + 2 + tag.length, 0)
    : ENTRY_HEADER_LENGTH;
  const entry = Buffer.allocUnsafe(headerLength + payload.length);
  entry[0] = PAYLOAD_MAGIC;
  entry[1] = tagBytes ? TAGGED_ENTRY_KIND : ENTRY_KIND;
  entry.fill(0, TOKEN_OFFSET, FRESH_UNTIL_OFFSET);
  entry.writeDoubleBE(freshUntil, FRESH_UNTIL_OFFSET);
  entry.writeFloatBE(Math.min(loadMs, 3.4e38), LOAD_MS_OFFSET);
  if (tagBytes) {
    entry.writeDoubleBE(tagged!.epoch, EPOCH_OFFSET);
    entry.writeUInt16BE(tagBytes.length, TAG_COUNT_OFFSET);
    let at = TAG_COUNT_OFFSET + 2;
    for (const tag of tagBytes) {
      at = entry.writeUInt16BE(tag.length, at);
      at += tag.copy(entry, at);
    }
  }
  payload.copy(entry, headerLength);
  return entry;
}

/** Decodes what a key holds. Throws `CacheSerializationError` for anything this package did not write. */
export function decodeEntry(codec: CacheCodec, stored: Buffer): StoredEntry {
  if (stored.length >= ENTRY_HEADER_LENGTH && stored[0] === PAYLOAD_MAGIC) {
    if (stored[1] === LEASE_KIND) return LEASE;
    if (stored[1] === ENTRY_KIND) {
      return new DecodedEntry(
        codec.decode(stored.subarray(ENTRY_HEADER_LENGTH)),
        stored.readDoubleBE(FRESH_UNTIL_OFFSET),
        stored.readFloatBE(LOAD_MS_OFFSET),
        stored,
      );
    }
    if (stored[1] === TAGGED_ENTRY_KIND) return decodeTagged(codec, stored);
  }
  throw notAnEntry(stored);
}

function decodeTagged(codec: CacheCodec, stored: Buffer): DecodedEntry {
  if (stored.length < TAG_COUNT_OFFSET + 2) throw notAnEntry(stored);
  const count = stored.readUInt16BE(TAG_COUNT_OFFSET);
  const tags: string[] = [];
  let at = TAG_COUNT_OFFSET + 2;
  for (let i = 0; i < count; i++) {
    if (at + 2 > stored.length) throw notAnEntry(stored);
    const length = stored.readUInt16BE(at);
    at += 2;
    if (at + length > stored.length) throw notAnEntry(stored);
    tags.push(stored.toString('utf8', at, (at += length)));
  }
  return new DecodedEntry(
    codec.decode(stored.subarray(at)),
    stored.readDoubleBE(FRESH_UNTIL_OFFSET),
    stored.readFloatBE(LOAD_MS_OFFSET),
    stored,
    tags,
    stored.readDoubleBE(EPOCH_OFFSET),
  );
}

function notAnEntry(stored: Buffer): CacheSerializationError {
  return new CacheSerializationError(
    `not a cache entry of this package (${stored.length} bytes, starting 0x${stored.subarray(0, 2).toString('hex')})`,
    'decode',
  );
}

/** A lease token: 8 random bytes, unique per load. */
export function newLeaseToken(): Buffer {
  return randomBytes(TOKEN_LENGTH);
}
