// The stored format of a cache key (core/cache-entry.ts): header bytes, round trip, the flags byte
// (what the loading method returned), lease placeholders, the stamp a refresh leases by, and garbage
// reported as a decode error.
import { CacheSerializationError } from 'nestjs-redis-cache';
import {
  decodeEntry,
  encodeEntry,
  ENTRY_HEADER_LENGTH,
  ENTRY_KIND,
  EPOCH_OFFSET,
  FLAGS_OFFSET,
  FRESH_UNTIL_OFFSET,
  LANDED_OFFSET,
  LEASE_KIND,
  LOAD_MS_OFFSET,
  MAX_TAGS,
  newLeaseToken,
  RETURNED_FLAGS,
  TOKEN_LENGTH,
  TOKEN_OFFSET,
  type StoredEntry,
} from '../../lib/core/cache-entry.js';
import { createDefaultCodec } from '../../lib/serialization/cache-codec.js';
import { PAYLOAD_MAGIC } from '../../lib/serialization/payload-header.js';
import { leasePlaceholder } from '../support/load-helpers.js';

const codec = createDefaultCodec();
const FRESH_UNTIL = 1_700_000_123_456.5;

function entryOf(stored: StoredEntry): Extract<StoredEntry, { kind: 'entry' }> {
  if (stored.kind !== 'entry') throw new Error(`expected an entry, got ${stored.kind}`);
  return stored;
}

function decodeError(bytes: Buffer): CacheSerializationError {
  try {
    decodeEntry(codec, bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(CacheSerializationError);
    expect((err as CacheSerializationError).direction).toBe('decode');
    expect((err as CacheSerializationError).code).toBe('E_CACHE_DECODE');
    return err as CacheSerializationError;
  }
  throw new Error('expected a CacheSerializationError');
}

describe('cache entries', () => {
  it('lays out the header: magic, ENTRY kind, no lease, fresh-until, load time, epoch, landed, tags, then the payload', () => {
    const bytes = encodeEntry(codec, { id: 1 }, FRESH_UNTIL, 12.5, 1_700_000_000_000_001);
    expect(bytes[0]).toBe(PAYLOAD_MAGIC);
    expect(bytes[1]).toBe(ENTRY_KIND);
    expect(bytes.subarray(TOKEN_OFFSET, FRESH_UNTIL_OFFSET)).toEqual(Buffer.alloc(16)); // token + lease deadline
    expect(bytes.readDoubleBE(FRESH_UNTIL_OFFSET)).toBe(FRESH_UNTIL);
    expect(bytes.readFloatBE(LOAD_MS_OFFSET)).toBe(12.5);
    expect(bytes.readDoubleBE(EPOCH_OFFSET)).toBe(1_700_000_000_000_001);
    expect(bytes.readDoubleBE(LANDED_OFFSET)).toBe(0); // the script that stores it writes when it landed
    expect(ENTRY_HEADER_LENGTH).toBe(48);
    expect(FLAGS_OFFSET).toBe(46);
    expect(bytes[FLAGS_OFFSET]).toBe(0); // what the method returned: not recorded
    expect(bytes[ENTRY_HEADER_LENGTH - 1]).toBe(0); // no tags
    expect(bytes.subarray(ENTRY_HEADER_LENGTH)).toEqual(codec.encode({ id: 1 }));
  });

  it('round-trips tags and the epoch', () => {
    const stored = entryOf(decodeEntry(codec, encodeEntry(codec, 'v', FRESH_UNTIL, 1, 77, ['post:1', '#tag'])));
    expect(stored.tags).toEqual(['post:1', '#tag']);
    expect(stored.epoch).toBe(77);
    expect(stored.value).toBe('v');
  });

  it.each([
    ['promise', 0x01],
    ['observable', 0x02],
  ] as const)('records that the method returned a %s in the flags byte, with or without tags', (mode, flag) => {
    expect(RETURNED_FLAGS[mode]).toBe(flag);
    const bytes = encodeEntry(codec, 'v', FRESH_UNTIL, 1, 77, ['post:1'], mode);
    expect(bytes[FLAGS_OFFSET]).toBe(flag);
    expect(bytes[ENTRY_HEADER_LENGTH - 1]).toBe(1); // one tag
    const stored = entryOf(decodeEntry(codec, bytes));
    expect(stored.returned).toBe(mode);
    expect(stored.tags).toEqual(['post:1']);
    expect(stored.value).toBe('v');
    expect(entryOf(decodeEntry(codec, encodeEntry(codec, 'v', FRESH_UNTIL, 1))).returned).toBeUndefined();
  });

  it('reads an entry written before the flags byte (a uint16 tag count there) with the mode unknown', () => {
    const tags = ['a', 'b'];
    const flagged = encodeEntry(codec, { id: 1 }, FRESH_UNTIL, 3, 9, tags, 'observable');
    // The earlier layout: bytes 46-47 were the tag count as a uint16, at most MAX_TAGS.
    const earlier = Buffer.from(flagged);
    earlier.writeUInt16BE(tags.length, FLAGS_OFFSET);
    const stored = entryOf(decodeEntry(codec, earlier));
    expect(stored.returned).toBeUndefined();
    expect(stored.tags).toEqual(tags);
    expect(stored.value).toEqual({ id: 1 });
    expect(MAX_TAGS).toBeLessThan(256); // so the earlier uint16's high byte, now the flags, was always 0
  });

  it.each([0x03, 0x10, 0x80, 0xff])('refuses a flags byte it does not know (%d): a later format', (flags) => {
    const bytes = encodeEntry(codec, 1, FRESH_UNTIL, 1);
    bytes[FLAGS_OFFSET] = flags;
    expect(decodeError(bytes).message).toMatch(/not a cache entry of this package/);
  });

  it('refuses to encode more than MAX_TAGS tags', () => {
    const tags = Array.from({ length: MAX_TAGS + 1 }, (_, i) => `t${i}`);
    expect(() => encodeEntry(codec, 1, FRESH_UNTIL, 1, 0, tags)).toThrow(CacheSerializationError);
    expect(entryOf(decodeEntry(codec, encodeEntry(codec, 1, FRESH_UNTIL, 1, 0, tags.slice(1)))).tags).toHaveLength(
      MAX_TAGS,
    );
  });

  it.each([0x02, 0x03, 0x04])(
    'reads an entry of the previous format (kind 0x%s) as nothing, not as an error',
    (kind) => {
      const previous = Buffer.concat([Buffer.from([PAYLOAD_MAGIC, kind]), Buffer.alloc(28), codec.encode('old')]);
      expect(decodeEntry(codec, previous)).toEqual({ kind: 'previous' });
    },
  );

  it.each([
    ['an object', { id: 7, name: 'ada', tags: ['a', 'b'], nested: { ok: true } }],
    ['a Date', new Date(1_700_000_000_000)],
    ['a Map and a Set', { map: new Map([['k', 1]]), set: new Set([1, 2]) }],
    ['a BigInt', 12345678901234567890n],
    ['null', null],
    ['undefined', undefined],
    ['an empty string', ''],
    ['a Buffer', Buffer.from([0xc1, 0x02, 0x03])],
  ])('round-trips %s with its freshness', (_label, value) => {
    const stored = entryOf(decodeEntry(codec, encodeEntry(codec, value, FRESH_UNTIL, 40.25)));
    expect(stored.value).toEqual(value);
    expect(stored.freshUntil).toBe(FRESH_UNTIL);
    expect(stored.loadMs).toBe(40.25);
  });

  it('stores the load time as float32 and clamps what float32 cannot hold', () => {
    expect(entryOf(decodeEntry(codec, encodeEntry(codec, 1, FRESH_UNTIL, 0.1))).loadMs).toBeCloseTo(0.1, 6);
    const huge = entryOf(decodeEntry(codec, encodeEntry(codec, 1, FRESH_UNTIL, Infinity))).loadMs;
    expect(Number.isFinite(huge)).toBe(true);
    expect(huge).toBeGreaterThan(3e38);
  });

  it('the stamp is the fresh-until bytes: the same for one version, different for another', () => {
    const v1 = encodeEntry(codec, 'a', FRESH_UNTIL, 5);
    const stamp = entryOf(decodeEntry(codec, v1)).stamp;
    expect(stamp).toHaveLength(LOAD_MS_OFFSET - FRESH_UNTIL_OFFSET);
    expect(stamp).toEqual(v1.subarray(FRESH_UNTIL_OFFSET, LOAD_MS_OFFSET));
    // Another value written at the same instant has the same stamp; a later write has another.
    expect(entryOf(decodeEntry(codec, encodeEntry(codec, 'b', FRESH_UNTIL, 9))).stamp).toEqual(stamp);
    expect(entryOf(decodeEntry(codec, encodeEntry(codec, 'a', FRESH_UNTIL + 1, 5))).stamp).not.toEqual(stamp);
  });

  it("an entry whose header carries a refresh's lease still decodes as that entry", () => {
    const bytes = encodeEntry(codec, { id: 3 }, FRESH_UNTIL, 5);
    // What ACQUIRE_LEASE does to a stale entry: SETRANGE of the token and the lease deadline.
    const lease = leasePlaceholder(newLeaseToken(), FRESH_UNTIL + 10_000);
    lease.copy(bytes, TOKEN_OFFSET, TOKEN_OFFSET, FRESH_UNTIL_OFFSET);
    const stored = entryOf(decodeEntry(codec, bytes));
    expect(stored.value).toEqual({ id: 3 });
    expect(stored.freshUntil).toBe(FRESH_UNTIL);
  });

  it('a lease placeholder (as the lease script writes it) decodes as a lease', () => {
    const placeholder = leasePlaceholder(newLeaseToken(), Date.now() + 10_000);
    expect(placeholder).toHaveLength(ENTRY_HEADER_LENGTH);
    expect(placeholder[1]).toBe(LEASE_KIND);
    expect(decodeEntry(codec, placeholder)).toEqual({ kind: 'lease' });
  });

  it('lease tokens are 8 random bytes', () => {
    const tokens = Array.from({ length: 100 }, () => newLeaseToken());
    for (const token of tokens) expect(token).toHaveLength(TOKEN_LENGTH);
    expect(new Set(tokens.map((token) => token.toString('hex'))).size).toBe(100);
  });

  it.each([
    ['an empty buffer', Buffer.alloc(0)],
    ['plain text', Buffer.from('{"id":1,"name":"not ours, but long enough"}')],
    ['a bare codec payload (no entry header)', codec.encode({ id: 1, padding: 'x'.repeat(40) })],
    ['a header one byte short', encodeEntry(codec, 1, FRESH_UNTIL, 1).subarray(0, ENTRY_HEADER_LENGTH - 1)],
    ['an unknown kind', Buffer.concat([Buffer.from([PAYLOAD_MAGIC, 0x07]), Buffer.alloc(40)])],
    ['the wrong magic byte', Buffer.concat([Buffer.from([0xc0, ENTRY_KIND]), Buffer.alloc(40)])],
  ])('rejects %s with a decode error', (_label, bytes) => {
    expect(decodeError(bytes).message).toMatch(/not a cache entry of this package/);
  });

  it('an entry header over a corrupt payload is a decode error from the codec', () => {
    const bytes = encodeEntry(codec, { id: 1 }, FRESH_UNTIL, 1);
    const corrupt = Buffer.concat([bytes.subarray(0, ENTRY_HEADER_LENGTH), Buffer.from([0x00, 0xff, 0xfe])]);
    decodeError(corrupt);
    const truncated = Buffer.concat([bytes.subarray(0, ENTRY_HEADER_LENGTH), bytes.subarray(ENTRY_HEADER_LENGTH, -2)]);
    decodeError(truncated);
  });

  it('an unencodable value is an encode error', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeEntry(codec, cyclic, FRESH_UNTIL, 1)).toThrow(CacheSerializationError);
  });
});
