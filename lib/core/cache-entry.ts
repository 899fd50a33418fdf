import { randomBytes } from 'node:crypto';
import { CacheSerializationError } from '../errors.js';
import type { CacheCodec } from '../serialization/cache-codec.js';
import { PAYLOAD_MAGIC } from '../serialization/payload-header.js';
import { compressPayload, decompressPayload, type CompressionSettings } from '../serialization/payload-compression.js';
import type { ReturnMode } from './cache-method-plan.js';

/**
 * What one Redis key of the cache holds: a header, then (for an entry) the codec's payload. This is
 * the entry format's second version: the first one's kinds (0x02-0x04) are read as a miss and may be
 * overwritten, so an upgrade costs misses, never a misread value.
 *
 *   byte 0       0xC1, the byte MessagePack never uses (see payload-header.ts)
 *   byte 1       kind: ENTRY (a value), LEASE (a placeholder: a load of this key is running) or
 *                TOMBSTONE (evicted: nothing to serve; it keeps the horizon)
 *   bytes 2-9    lease token: who may replace this key with a loaded value; zeros when none (the
 *                last byte's lowest bit: a caller waits for the lease's release)
 *   bytes 10-17  lease deadline, ms since the epoch on Redis's clock (float64 BE); 0 when none
 *   bytes 18-25  fresh until, ms since the epoch on the writer's clock (float64 BE)
 *   bytes 26-29  how long the load that produced the value took, ms (float32 BE): XFetch's delta
 *   bytes 30-37  an invalidation epoch no later than the one the value's load began in (float64 BE;
 *                0 when unknown): tags and cleared prefixes invalidate entries loaded before them
 *   bytes 38-45  the key's horizon: when the entry (or the write or eviction a tombstone stands for)
 *                landed, Redis TIME in microseconds, written by the script that stored it (float64
 *                BE); a later write of the key compares when it began with it
 *   byte 46      flags. Bits 0-1: what the method that loaded the value returned, when its return
 *                type was not recorded (RETURNED_FLAGS): 0 unknown (not a load of such a method, or
 *                an entry written before this byte existed), 1 a Promise, 2 an Observable. Bits
 *                2-3: how the payload is compressed (COMPRESSION_SHIFT): 0 not, 1 gzip, 2 brotli,
 *                3 zstd (serialization/payload-compression.ts). Bits 4-7, and returned-mode 3, are
 *                a later format's: refused (read as undecodable), never misread
 *   byte 47      the number of tags (at most MAX_TAGS), then each tag: length (uint16 BE) and UTF-8
 *                bytes
 *   then         the codec's payload (ENTRY), compressed when bits 2-3 say so
 *
 * Bytes 46-47 were one uint16 tag count, which never exceeded MAX_TAGS: every entry written before
 * the flags byte reads as flags 0. A release without it reads a flagged entry as undecodable (a
 * miss, deleted and counted), so flags are written only where a reader needs them. The same holds
 * for a compressed entry read by a release before compression.
 *
 * The lease lives in the entry's own key, so a write or an eviction (which leaves a tombstone)
 * revokes the lease of a load in flight: docs/lease-protocol.md. The Lua scripts in
 * store/entry-scripts.ts read the same offsets; docs/entry-format.md has the layout with diagrams.
 */
export const ENTRY_KIND = 0x12;
export const LEASE_KIND = 0x13;
/** An evicted key, or one where two writes overlapped: nothing to serve, and the horizon (store/entry-scripts.ts). */
export const TOMBSTONE_KIND = 0x14;
/** The kinds of the first entry format (a value, a lease, a tagged value): read as a miss. */
export const PREVIOUS_FORMAT_KINDS: readonly number[] = [0x02, 0x03, 0x04];
export const TOKEN_OFFSET = 2;
export const TOKEN_LENGTH = 8;
export const FRESH_UNTIL_OFFSET = 18;
export const LOAD_MS_OFFSET = 26;
export const EPOCH_OFFSET = 30;
export const LANDED_OFFSET = 38;
export const FLAGS_OFFSET = 46;
const TAG_COUNT_OFFSET = 47;
/** The fixed part of the header, a lease placeholder's whole length. */
export const ENTRY_HEADER_LENGTH = 48;
/** More tags on one entry than this is a configuration mistake, refused when the entry is written. */
export const MAX_TAGS = 64;

/**
 * The flags byte's values: the mode of the method whose load stored the value, so a hit served
 * elsewhere returns the same shape (see `learnReturnMode`); 0 when not recorded.
 */
export const RETURNED_FLAGS: Readonly<Record<ReturnMode, number>> = Object.freeze({ promise: 0x01, observable: 0x02 });
const RETURNED_BY_FLAGS = new Map<number, ReturnMode>(
  Object.entries(RETURNED_FLAGS).map(([mode, flag]) => [flag, mode as ReturnMode]),
);
/** Bits 0-1 of the flags byte: the returned mode. */
const RETURNED_MASK = 0x03;
/** Where the compression code (payload-compression.ts) sits in the flags byte: bits 2-3. */
export const COMPRESSION_SHIFT = 2;
/** The flags this format knows; an entry with any other bit set is a later format's. */
const KNOWN_FLAGS = 0x0f;

/** The tags of an entry that has none. */
export const NO_TAGS: readonly string[] = Object.freeze([]);

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
    /** Its tags (see cache-tags.ts), NO_TAGS for an untagged entry. */
    readonly tags: readonly string[] = NO_TAGS,
    /** No later than the invalidation epoch its load began in; 0 when unknown. */
    readonly epoch = 0,
    /** What the method whose load stored it returned, when the entry says (see RETURNED_FLAGS). */
    readonly returned: ReturnMode | undefined = undefined,
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

/** Nothing under the key (or an entry of the previous format, which reads as nothing). */
export const NOTHING: EntryRead = Object.freeze({ leased: false, failed: false });
/** A lease placeholder: a load of the key is running. */
export const LEASED: EntryRead = Object.freeze({ leased: true, failed: false });
/** The read failed, or the payload could not be decoded (and was counted). */
export const READ_FAILED: EntryRead = Object.freeze({ leased: false, failed: true });

/** A decoded key: a value with its freshness, a lease placeholder, or nothing to serve (a tombstone, the previous format). */
export type StoredEntry = DecodedEntry | { kind: 'lease' } | { kind: 'previous' } | { kind: 'tombstone' };

const LEASE = Object.freeze({ kind: 'lease' as const });
const TOMBSTONE = Object.freeze({ kind: 'tombstone' as const });
const PREVIOUS = Object.freeze({ kind: 'previous' as const });

/**
 * Encodes a value with its freshness metadata and no lease. `epoch`: no later than the invalidation
 * epoch its load began in (0: unknown, which every clear and tag invalidation predates). `returned`:
 * what the method that produced it returned, for readers that cannot tell (see RETURNED_FLAGS). The
 * landing time is left 0: the script that stores the entry writes it. `compression`: the module's,
 * applied to the codec's payload (not the header or tags) when it is large enough and gets smaller.
 * Throws `CacheSerializationError`.
 */
export function encodeEntry(
  codec: CacheCodec,
  value: unknown,
  freshUntil: number,
  loadMs: number,
  epoch = 0,
  tags: readonly string[] = NO_TAGS,
  returned?: ReturnMode,
  compression?: CompressionSettings,
): Buffer {
  if (tags.length > MAX_TAGS) {
    throw new CacheSerializationError(`at most ${MAX_TAGS} tags per entry, got ${tags.length}`, 'encode');
  }
  const { bytes: payload, code } = compressPayload(codec.encode(value), compression);
  const tagBytes = tags.map((tag) => Buffer.from(tag, 'utf8'));
  const headerLength = ENTRY_HEADER_LENGTH + tagBytes.reduce((sum, tag) => sum + 2 + tag.length, 0);
  const entry = Buffer.allocUnsafe(headerLength + payload.length);
  entry[0] = PAYLOAD_MAGIC;
  entry[1] = ENTRY_KIND;
  entry.fill(0, TOKEN_OFFSET, FRESH_UNTIL_OFFSET);
  entry.writeDoubleBE(freshUntil, FRESH_UNTIL_OFFSET);
  entry.writeFloatBE(Math.min(loadMs, 3.4e38), LOAD_MS_OFFSET);
  entry.writeDoubleBE(epoch, EPOCH_OFFSET);
  entry.writeDoubleBE(0, LANDED_OFFSET);
  entry[FLAGS_OFFSET] = (returned === undefined ? 0 : RETURNED_FLAGS[returned]) | (code << COMPRESSION_SHIFT);
  entry[TAG_COUNT_OFFSET] = tagBytes.length;
  let at = ENTRY_HEADER_LENGTH;
  for (const tag of tagBytes) {
    at = entry.writeUInt16BE(tag.length, at);
    at += tag.copy(entry, at);
  }
  payload.copy(entry, headerLength);
  return entry;
}

/** Decodes what a key holds. Throws `CacheSerializationError` for anything this package did not write. */
export function decodeEntry(codec: CacheCodec, stored: Buffer): StoredEntry {
  if (stored.length >= ENTRY_HEADER_LENGTH && stored[0] === PAYLOAD_MAGIC) {
    if (stored[1] === ENTRY_KIND) return decodeValue(codec, stored);
    if (stored[1] === LEASE_KIND) return LEASE;
    if (stored[1] === TOMBSTONE_KIND) return TOMBSTONE;
  }
  if (stored.length >= 30 && stored[0] === PAYLOAD_MAGIC && PREVIOUS_FORMAT_KINDS.includes(stored[1])) {
    return PREVIOUS;
  }
  throw notAnEntry(stored);
}

function decodeValue(codec: CacheCodec, stored: Buffer): DecodedEntry {
  const flags = stored[FLAGS_OFFSET];
  const returnedFlag = flags & RETURNED_MASK;
  const returned = returnedFlag === 0 ? undefined : RETURNED_BY_FLAGS.get(returnedFlag);
  if ((flags & ~KNOWN_FLAGS) !== 0 || (returnedFlag !== 0 && returned === undefined)) throw notAnEntry(stored);
  const count = stored[TAG_COUNT_OFFSET];
  let tags: readonly string[] = NO_TAGS;
  let at = ENTRY_HEADER_LENGTH;
  if (count > 0) {
    if (count > MAX_TAGS) throw notAnEntry(stored);
    const read: string[] = [];
    for (let i = 0; i < count; i++) {
      if (at + 2 > stored.length) throw notAnEntry(stored);
      const length = stored.readUInt16BE(at);
      at += 2;
      if (at + length > stored.length) throw notAnEntry(stored);
      read.push(stored.toString('utf8', at, (at += length)));
    }
    tags = read;
  }
  const code = flags >> COMPRESSION_SHIFT;
  let payload = stored.subarray(at);
  if (code !== 0) {
    try {
      payload = decompressPayload(payload, code);
    } catch (err) {
      throw notAnEntry(stored, err);
    }
  }
  return new DecodedEntry(
    codec.decode(payload),
    stored.readDoubleBE(FRESH_UNTIL_OFFSET),
    stored.readFloatBE(LOAD_MS_OFFSET),
    stored,
    tags,
    stored.readDoubleBE(EPOCH_OFFSET),
    returned,
  );
}

function notAnEntry(stored: Buffer, cause?: unknown): CacheSerializationError {
  const why = cause instanceof Error ? `: ${cause.message}` : '';
  return new CacheSerializationError(
    `not a cache entry of this package (${stored.length} bytes, starting 0x${stored.subarray(0, 2).toString('hex')})${why}`,
    'decode',
    cause === undefined ? undefined : { cause },
  );
}

/**
 * A lease token: 8 random bytes, unique per load, the lowest bit of the last one clear (a waiter sets
 * it in the key: WAITED_BIT in store/entry-scripts.ts).
 */
export function newLeaseToken(): Buffer {
  const token = randomBytes(TOKEN_LENGTH);
  token[TOKEN_LENGTH - 1] &= 0xfe;
  return token;
}
