// Compression of large payloads (serialization/payload-compression.ts) and its bits in the entry's
// flags byte (core/cache-entry.ts): round trips, the threshold, incompressible data, refused flags,
// decompression bombs and garbage, all reported as decode errors (a miss) and never inflated past the bound.
import { randomBytes } from 'node:crypto';
import { createGzip, constants, gzipSync } from 'node:zlib';
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { CacheSerializationError, CacheService, RedisCacheTestingModule } from 'nestjs-redis-cache';
import {
  COMPRESSION_SHIFT,
  decodeEntry,
  encodeEntry,
  ENTRY_HEADER_LENGTH,
  FLAGS_OFFSET,
  type StoredEntry,
} from '../../lib/core/cache-entry.js';
import { createDefaultCodec } from '../../lib/serialization/cache-codec.js';
import {
  COMPRESSION_ALGORITHMS,
  compressPayload,
  decompressPayload,
  isCompressionAvailable,
  MAX_INFLATED_BYTES,
  type CompressionAlgorithm,
  type CompressionSettings,
} from '../../lib/serialization/payload-compression.js';

const codec = createDefaultCodec();
const FRESH_UNTIL = 1_700_000_123_456.5;
const HAS_ZSTD = isCompressionAvailable('zstd');
const ALGORITHMS: CompressionAlgorithm[] = HAS_ZSTD ? ['gzip', 'brotli', 'zstd'] : ['gzip', 'brotli'];

const settings = (algorithm: CompressionAlgorithm, threshold = 0): CompressionSettings => ({
  algorithm,
  threshold,
  level: COMPRESSION_ALGORITHMS[algorithm].levels.default,
});

/** A value shaped like a cached page of orders: about 20 KB encoded, and compressible like one. */
function orders(count = 100) {
  return {
    customer: { id: 7, name: 'Ada Lovelace', since: new Date(1_700_000_000_000) },
    orders: Array.from({ length: count }, (_, i) => ({
      id: 1_000 + i,
      status: ['placed', 'paid', 'shipped'][i % 3],
      placedAt: new Date(1_700_000_000_000 + i * 3_600_000),
      items: [{ sku: `SKU-${(i * 7_919) % 997}`, name: `Product ${i % 13} in blue`, quantity: 1 + (i % 4) }],
      totals: new Map<string, number | bigint>([
        ['net', i * 10.5],
        ['cents', BigInt(i) * 1_050n],
      ]),
    })),
  };
}

function entryOf(stored: StoredEntry): Extract<StoredEntry, { kind: 'entry' }> {
  if (stored.kind !== 'entry') throw new Error(`expected an entry, got ${stored.kind}`);
  return stored;
}

function decodeError(run: () => unknown): CacheSerializationError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(CacheSerializationError);
    expect((err as CacheSerializationError).direction).toBe('decode');
    return err as CacheSerializationError;
  }
  throw new Error('expected a CacheSerializationError');
}

/** The codec payload an entry holds after its header (untagged entries only). */
const payloadOf = (entry: Buffer) => entry.subarray(ENTRY_HEADER_LENGTH);

/** A gzip stream of `bytes` zeros, built 1 MiB at a time: the test never holds the inflated form. */
async function gzippedZeros(bytes: number): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gzip.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise((resolve) => gzip.on('end', resolve));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let left = bytes; left > 0; left -= zeros.length) {
    if (!gzip.write(left >= zeros.length ? zeros : zeros.subarray(0, left))) {
      await new Promise((resolve) => gzip.once('drain', resolve));
    }
  }
  gzip.end();
  await ended;
  return Buffer.concat(chunks);
}

/** What compressPayload writes: the stated length (uint32 BE), then the stream. */
const withLength = (length: number, stream: Buffer) => {
  const bytes = Buffer.alloc(4 + stream.length);
  bytes.writeUInt32BE(length, 0);
  stream.copy(bytes, 4);
  return bytes;
};

describe('payload compression', () => {
  it.each(ALGORITHMS)(
    'round-trips a value through %s, smaller, with the code in bits 2-3 of the flags',
    (algorithm) => {
      const value = orders();
      const plain = codec.encode(value);
      const entry = encodeEntry(codec, value, FRESH_UNTIL, 3, 0, [], undefined, settings(algorithm));
      const code = COMPRESSION_ALGORITHMS[algorithm].code;
      expect(entry[FLAGS_OFFSET]).toBe(code << COMPRESSION_SHIFT);
      expect(entry.length).toBeLessThan((ENTRY_HEADER_LENGTH + plain.length) / 2);
      expect(payloadOf(entry).readUInt32BE(0)).toBe(plain.length); // the stated length
      const stored = entryOf(decodeEntry(codec, entry));
      expect(stored.value).toEqual(value);
      expect(stored.value).toStrictEqual(codec.decode(plain)); // Date, Map and BigInt come back as themselves
      expect(stored.freshUntil).toBe(FRESH_UNTIL);
      expect(stored.returned).toBeUndefined();
    },
  );

  it('compresses only the payload: the header and the tags stay readable as they are', () => {
    const value = orders();
    const entry = encodeEntry(codec, value, FRESH_UNTIL, 3, 42, ['user:7', 'orders'], 'observable', settings('brotli'));
    expect(entry[FLAGS_OFFSET]).toBe(0x02 | (2 << COMPRESSION_SHIFT)); // an Observable, brotli
    expect(entry.toString('utf8', ENTRY_HEADER_LENGTH + 2, ENTRY_HEADER_LENGTH + 8)).toBe('user:7');
    const stored = entryOf(decodeEntry(codec, entry));
    expect(stored).toMatchObject({ tags: ['user:7', 'orders'], epoch: 42, returned: 'observable', loadMs: 3 });
    expect(stored.value).toEqual(value);
  });

  it('reads every algorithm it knows whatever it writes: decodeEntry takes no settings', () => {
    const value = orders(30);
    const written = ALGORITHMS.map((algorithm) =>
      encodeEntry(codec, value, FRESH_UNTIL, 1, 0, [], 'promise', settings(algorithm)),
    );
    for (const entry of written) {
      expect(entryOf(decodeEntry(codec, entry))).toMatchObject({ value, returned: 'promise' });
    }
  });

  describe('the threshold', () => {
    const compressible = (length: number) => Buffer.alloc(length, 'cache ');

    it('compresses a payload of exactly the threshold, and above it', () => {
      expect(compressPayload(compressible(1_000), settings('gzip', 1_000)).code).toBe(1);
      expect(compressPayload(compressible(1_001), settings('gzip', 1_000)).code).toBe(1);
    });

    it('stores a payload one byte below it as it is (the same buffer)', () => {
      const payload = compressible(999);
      expect(compressPayload(payload, settings('gzip', 1_000))).toEqual({ bytes: payload, code: 0 });
      expect(compressPayload(payload, settings('gzip', 1_000)).bytes).toBe(payload);
    });

    it("measures the codec's payload: an entry at the threshold is compressed, one byte under is not", () => {
      const value = orders(40);
      const length = codec.encode(value).length;
      const at = encodeEntry(codec, value, FRESH_UNTIL, 1, 0, [], undefined, settings('gzip', length));
      const over = encodeEntry(codec, value, FRESH_UNTIL, 1, 0, [], undefined, settings('gzip', length + 1));
      expect(at[FLAGS_OFFSET]).toBe(1 << COMPRESSION_SHIFT);
      expect(over[FLAGS_OFFSET]).toBe(0);
      expect(payloadOf(over)).toEqual(codec.encode(value));
      expect(entryOf(decodeEntry(codec, at)).value).toEqual(value);
      expect(entryOf(decodeEntry(codec, over)).value).toEqual(value);
    });

    it('without settings (compression off) stores every payload as it is', () => {
      const payload = compressible(100_000);
      expect(compressPayload(payload, undefined).bytes).toBe(payload);
    });

    it('stores a payload past MAX_INFLATED_BYTES as it is, so no reader would refuse it', () => {
      const payload = Buffer.alloc(MAX_INFLATED_BYTES + 1);
      expect(compressPayload(payload, settings('gzip')).code).toBe(0);
    });
  });

  it.each(ALGORITHMS)('keeps incompressible data (random bytes) as it is under %s', (algorithm) => {
    const value = randomBytes(20_000);
    const entry = encodeEntry(codec, value, FRESH_UNTIL, 1, 0, [], 'promise', settings(algorithm));
    expect(entry[FLAGS_OFFSET]).toBe(0x01); // the returned mode only: not compressed
    expect(payloadOf(entry)).toEqual(codec.encode(value));
    expect(entryOf(decodeEntry(codec, entry)).value).toEqual(value);
  });

  describe('flags', () => {
    const compressed = () => encodeEntry(codec, orders(20), FRESH_UNTIL, 1, 0, [], 'promise', settings('gzip'));

    it('parses the returned mode and the algorithm from one byte', () => {
      const entry = compressed();
      expect(entry[FLAGS_OFFSET]).toBe(0x05); // promise (1) | gzip (1 << 2)
      expect(entryOf(decodeEntry(codec, entry))).toMatchObject({ returned: 'promise', value: orders(20) });
    });

    it.each(['0x10', '0x20', '0x40', '0x80', '0x15', '0xf5'])('refuses a bit it does not know (flags %s)', (flags) => {
      const entry = compressed();
      entry[FLAGS_OFFSET] = Number(flags);
      expect(decodeError(() => decodeEntry(codec, entry)).message).toMatch(/not a cache entry of this package/);
    });

    it('refuses returned-mode 3 beside a known algorithm', () => {
      const entry = compressed();
      entry[FLAGS_OFFSET] = 0x07;
      expect(decodeError(() => decodeEntry(codec, entry)).message).toMatch(/not a cache entry of this package/);
    });

    it('refuses an uncompressed payload flagged as compressed, naming why', () => {
      const entry = encodeEntry(codec, orders(20), FRESH_UNTIL, 1);
      entry[FLAGS_OFFSET] = 2 << COMPRESSION_SHIFT; // brotli
      const err = decodeError(() => decodeEntry(codec, entry));
      expect(err.message).toMatch(
        /not a cache entry of this package \(\d+ bytes, starting 0xc112\): Cannot decode a brotli payload/,
      );
      expect(err.cause).toBeInstanceOf(CacheSerializationError);
    });

    (HAS_ZSTD ? it.skip : it)('refuses a zstd entry on a Node without zstd: a miss, not a crash', () => {
      const entry = compressed();
      entry[FLAGS_OFFSET] = 3 << COMPRESSION_SHIFT;
      expect(decodeError(() => decodeEntry(codec, entry)).message).toMatch(
        /zstd compression, which node:zlib of Node v\d+.* lacks/,
      );
    });
  });

  describe('decompression is bounded', () => {
    const TWO_HUNDRED_MB = 200 * 1024 * 1024;
    let bomb: Buffer;
    beforeAll(async () => {
      bomb = await gzippedZeros(TWO_HUNDRED_MB);
    });

    it('refuses 200 MB of zeros stating their length: past the bound, nothing is inflated', () => {
      expect(bomb.length).toBeLessThan(TWO_HUNDRED_MB / 500); // the bomb itself is small
      const err = decodeError(() => decompressPayload(withLength(TWO_HUNDRED_MB, bomb), 1));
      expect(err.message).toBe(
        `Cannot decode a gzip payload stating ${TWO_HUNDRED_MB} bytes, past the ${MAX_INFLATED_BYTES}-byte bound`,
      );
      expect(err.cause).toBeUndefined(); // refused before zlib saw it
    });

    it('refuses 200 MB of zeros stating a small length: zlib stops at the stated length', () => {
      const err = decodeError(() => decompressPayload(withLength(1_000, bomb), 1));
      expect(err.message).toMatch(/^Cannot decode a gzip payload that does not inflate to its stated 1000 bytes/);
      expect((err.cause as NodeJS.ErrnoException).code).toBe('ERR_BUFFER_TOO_LARGE');
    });

    it('refuses 200 MB of zeros stating the bound itself: inflated no further than the bound', () => {
      const err = decodeError(() => decompressPayload(withLength(MAX_INFLATED_BYTES, bomb), 1));
      expect((err.cause as NodeJS.ErrnoException).code).toBe('ERR_BUFFER_TOO_LARGE');
    });

    it('refuses the bomb inside an entry: the read is a decode error (a miss)', () => {
      const entry = encodeEntry(codec, orders(20), FRESH_UNTIL, 1, 0, [], undefined, settings('gzip'));
      const forged = Buffer.concat([entry.subarray(0, ENTRY_HEADER_LENGTH), withLength(5_000, bomb)]);
      expect(decodeError(() => decodeEntry(codec, forged)).message).toMatch(
        /does not inflate to its stated 5000 bytes/,
      );
    });
  });

  describe('garbage', () => {
    const stream = gzipSync(Buffer.alloc(10_000, 'cache '));

    it.each([
      ['random bytes after the length', withLength(10_000, randomBytes(200))],
      ['a truncated stream', withLength(10_000, stream.subarray(0, stream.length - 6))],
      [
        'a stream with a flipped byte (its CRC no longer matches)',
        withLength(10_000, flipped(stream, stream.length - 9)),
      ],
      ['nothing after the length', withLength(10_000, Buffer.alloc(0))],
      ['too few bytes to state a length', Buffer.from([0x00, 0x00])],
    ])('refuses %s', (_, bytes) => {
      expect(decodeError(() => decompressPayload(bytes, 1)).message).toMatch(/^Cannot decode a gzip payload/);
    });

    it('refuses a stream inflating to fewer bytes than stated', () => {
      expect(decodeError(() => decompressPayload(withLength(10_001, stream), 1)).message).toBe(
        'Cannot decode a gzip payload inflating to 10000 bytes, not its stated 10001',
      );
    });

    it('refuses a code no algorithm has', () => {
      expect(decodeError(() => decompressPayload(withLength(10_000, stream), 0)).message).toBe(
        'Cannot decode unknown compression code 0',
      );
    });

    it.each(ALGORITHMS)('inflates what %s wrote, and refuses it under another algorithm', (algorithm) => {
      const payload = Buffer.alloc(10_000, 'redis ');
      const { bytes, code } = compressPayload(payload, settings(algorithm));
      expect(decompressPayload(bytes, code)).toEqual(payload);
      const other = code === 1 ? 2 : 1;
      expect(() => decompressPayload(bytes, other)).toThrow(CacheSerializationError);
    });
  });

  it('works on the in-memory store of RedisCacheTestingModule, which reads only the header', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheTestingModule.forRoot({ compression: { algorithm: 'brotli', threshold: 1_000 } })],
    }).compile();
    const app = await moduleRef.createNestApplication({ logger: false }).init();
    try {
      const cache = app.get(CacheService);
      await cache.set('orders', orders());
      expect(await cache.get('orders')).toEqual(orders());
      expect(await cache.getOrSet('orders', () => Promise.resolve('loaded'))).toEqual(orders());
      expect(cache.stats().errors).toBe(0);
    } finally {
      await app.close();
    }
  });

  (HAS_ZSTD ? it.skip : it)('has no zstd to call on a Node without it (the option is refused at bootstrap)', () => {
    expect(() => COMPRESSION_ALGORITHMS.zstd.compress(Buffer.alloc(100), 3)).toThrow(/has no zstdCompressSync/);
    expect(() => COMPRESSION_ALGORITHMS.zstd.decompress(Buffer.alloc(100), {})).toThrow(/has no zstdDecompressSync/);
  });

  it('declares the levels a level option may take', () => {
    expect(COMPRESSION_ALGORITHMS.gzip.levels).toEqual({ min: 1, max: 9, default: 4 });
    expect(COMPRESSION_ALGORITHMS.brotli.levels).toEqual({ min: 0, max: 11, default: 5 });
    expect(COMPRESSION_ALGORITHMS.zstd.levels).toEqual({ min: 1, max: 19, default: 3 });
    expect(constants.BROTLI_MAX_QUALITY).toBe(11);
  });
});

function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] ^= 0xff;
  return copy;
}
