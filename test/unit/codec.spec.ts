import { runInThisContext } from 'node:vm';
import { pack } from 'msgpackr';
import { CacheSerializationError, RedisCacheError } from '../../lib/errors.js';
import { createDefaultCodec, type CacheCodec } from '../../lib/serialization/cache-codec.js';
import { findCycle } from '../../lib/serialization/find-cycle.js';
import { MsgpackCacheCodec } from '../../lib/serialization/msgpack-cache-codec.js';
import {
  PAYLOAD_FORMAT_VERSION,
  PAYLOAD_HEADER_LENGTH,
  PAYLOAD_MAGIC,
} from '../../lib/serialization/payload-header.js';

const HEADER = Buffer.from([PAYLOAD_MAGIC, PAYLOAD_FORMAT_VERSION]);

/** mulberry32: a tiny seeded PRNG, so every fuzz case can be replayed from its seed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(seed: number, maxLength: number): Buffer {
  const random = prng(seed);
  const bytes = Buffer.alloc(Math.floor(random() * (maxLength + 1)));
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

/** The error `fn` throws; fails the test if it returns. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw, but the call returned');
}

function expectSerializationError(fn: () => unknown, direction: 'encode' | 'decode') {
  const error = thrownBy(fn);
  expect(error).toBeInstanceOf(CacheSerializationError);
  expect(error).toBeInstanceOf(RedisCacheError);
  const serializationError = error as CacheSerializationError;
  expect(serializationError.direction).toBe(direction);
  expect(serializationError.code).toBe(direction === 'encode' ? 'E_CACHE_ENCODE' : 'E_CACHE_DECODE');
  return serializationError;
}

describe('MsgpackCacheCodec', () => {
  let codec: CacheCodec;
  const roundTrip = (value: unknown): unknown => codec.decode(codec.encode(value));

  beforeEach(() => {
    codec = new MsgpackCacheCodec();
  });

  it('is what createDefaultCodec returns', () => {
    expect(createDefaultCodec()).toBeInstanceOf(MsgpackCacheCodec);
    expect(createDefaultCodec()).not.toBe(createDefaultCodec());
  });

  describe('round trip of scalars', () => {
    it('keeps null and top-level undefined apart', () => {
      expect(roundTrip(null)).toBeNull();
      const decoded = roundTrip(undefined);
      expect(decoded).toBeUndefined();
      expect(decoded).not.toBeNull();
      expect(typeof decoded).toBe('undefined');
    });

    it.each([true, false])('boolean %s', (value) => {
      const decoded = roundTrip(value);
      expect(decoded).toBe(value);
      expect(typeof decoded).toBe('boolean');
    });

    it.each([
      0,
      1,
      31,
      63,
      64,
      127,
      128,
      255,
      256,
      65_535,
      65_536,
      2 ** 31 - 1,
      2 ** 32 - 1,
      2 ** 32,
      -1,
      -32,
      -33,
      -128,
      -129,
      -32_768,
      -32_769,
      -(2 ** 31),
      -(2 ** 31) - 1,
    ])('integer %d stays a number', (value) => {
      const decoded = roundTrip(value);
      expect(decoded).toBe(value);
      expect(typeof decoded).toBe('number');
      expect(Number.isInteger(decoded)).toBe(true);
    });

    it.each([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, 2 ** 40 + 7, -(2 ** 40) - 7, Date.now()])(
      'large integer %d stays a number, not a bigint',
      (value) => {
        const decoded = roundTrip(value);
        expect(decoded).toBe(value);
        expect(typeof decoded).toBe('number');
      },
    );

    it.each([
      0.1,
      -3.75,
      Math.PI,
      1e-300,
      -1e-300,
      Number.MIN_VALUE,
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      Number.EPSILON,
      NaN,
      Infinity,
      -Infinity,
    ])('float %d keeps every bit', (value) => {
      const decoded = roundTrip(value);
      expect(decoded).toBe(value); // Object.is: NaN equals NaN here
      expect(typeof decoded).toBe('number');
    });

    it('writes -0 as an integer, so it comes back as 0 (documented)', () => {
      expect(Object.is(roundTrip(-0), 0)).toBe(true);
    });

    it.each([
      ['empty', ''],
      ['ascii', 'hello world'],
      ['latin-1 and combining marks', 'über café naïve e\u0301'],
      ['CJK, Cyrillic, emoji', '東京 данные 🚀👩‍👩‍👧'],
      ['control characters and NUL', '\u0000\u0001\n\t\u007f'],
      ['31 characters (fixstr limit)', 'x'.repeat(31)],
      ['64 KB', 'ä'.repeat(32 * 1024)],
      ['1 MB', 'abc'.repeat(350_000)],
    ])('string: %s', (_label, value) => {
      const decoded = roundTrip(value);
      expect(decoded).toBe(value);
      expect(typeof decoded).toBe('string');
    });

    it('turns a lone UTF-16 surrogate into U+FFFD replacement characters (documented)', () => {
      // Strings are stored as UTF-8, which cannot hold a lone surrogate. msgpackr writes its three
      // CESU-style bytes, and each decodes to U+FFFD.
      const decoded = roundTrip('a\uD800b') as string;
      expect(decoded.startsWith('a\uFFFD')).toBe(true);
      expect(decoded.endsWith('\uFFFDb')).toBe(true);
    });
  });

  describe('round trip of BigInt', () => {
    it.each([
      0n,
      5n,
      -5n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      2n ** 63n,
      2n ** 64n - 1n,
      2n ** 64n,
      2n ** 64n + 1n,
      -(2n ** 64n) - 1n,
      10n ** 100n,
      -(10n ** 100n),
      2n ** 5000n + 12345n,
    ])('%s stays a bigint', (value) => {
      const decoded = roundTrip(value);
      expect(decoded).toBe(value);
      expect(typeof decoded).toBe('bigint');
    });
  });

  describe('round trip of Date', () => {
    it.each([
      new Date(0),
      new Date('2025-01-15T10:20:30.456Z'),
      new Date(1), // 1 ms after the epoch: ms precision
      new Date(-1), // 1 ms before the epoch
      new Date('1901-12-13T20:45:51.999Z'), // before 1970: negative seconds
      new Date('3000-06-01T00:00:00.001Z'), // past 2106: the 96-bit timestamp form
      new Date(8.64e15), // the largest Date
      new Date(-8.64e15), // the smallest Date
    ])('%o keeps its milliseconds', (value) => {
      const decoded = roundTrip(value);
      expect(decoded).toBeInstanceOf(Date);
      expect((decoded as Date).getTime()).toBe(value.getTime());
      expect(decoded).toEqual(value);
    });

    it('keeps an invalid Date invalid', () => {
      const decoded = roundTrip(new Date(NaN));
      expect(decoded).toBeInstanceOf(Date);
      expect(Number.isNaN((decoded as Date).getTime())).toBe(true);
    });
  });

  describe('round trip of binary data', () => {
    it.each([
      ['empty', Buffer.alloc(0)],
      ['small', Buffer.from([0, 1, 2, 0xc1, 0xff])],
      ['256 bytes', Buffer.alloc(256, 7)],
      ['100 KB', randomBytes(1, 100 * 1024)],
    ])('Buffer (%s) comes back as a Buffer', (_label, value) => {
      const decoded = roundTrip(value);
      expect(Buffer.isBuffer(decoded)).toBe(true);
      expect(decoded).toBeInstanceOf(Buffer);
      expect(decoded).toEqual(value);
    });

    it('Uint8Array comes back as a Uint8Array, not a Buffer', () => {
      const value = new Uint8Array([1, 2, 3, 250]);
      const decoded = roundTrip(value);
      expect(decoded).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(decoded)).toBe(false);
      expect((decoded as Uint8Array).constructor).toBe(Uint8Array);
      expect(decoded).toEqual(value);
    });

    it('a Uint8Array or Buffer view keeps only the bytes it views', () => {
      const backing = new Uint8Array([9, 8, 7, 6, 5, 4]);
      expect(roundTrip(backing.subarray(1, 3))).toEqual(new Uint8Array([8, 7]));
      const buffer = Buffer.from('0123456789');
      const decoded = roundTrip(buffer.subarray(2, 5));
      expect(Buffer.isBuffer(decoded)).toBe(true);
      expect((decoded as Buffer).toString()).toBe('234');
    });

    // Jest runs tests in a vm context whose typed-array constructors differ from the ones msgpackr
    // recognises (Jest swaps in the outer realm's Uint8Array and ArrayBuffer only), so the values
    // are built with the outer realm's constructors, as any plain Node process would have them.
    it.each(['Int8Array', 'Uint16Array', 'Int32Array', 'Float32Array', 'Float64Array', 'BigInt64Array'])(
      '%s keeps its type',
      (typeName) => {
        const Ctor = runInThisContext(typeName) as new (items: ArrayLike<unknown>) => ArrayLike<unknown>;
        const items = typeName.startsWith('Big') ? [-(2n ** 63n), 1n] : [-1, 2, 100];
        const decoded = roundTrip(new Ctor(items)) as ArrayLike<unknown>;
        expect(ArrayBuffer.isView(decoded)).toBe(true);
        expect(Object.prototype.toString.call(decoded)).toBe(`[object ${typeName}]`);
        expect(Array.from(decoded)).toEqual(Array.from(new Ctor(items)));
      },
    );

    it('a decoded Buffer owns its bytes instead of viewing the payload', () => {
      const payload = codec.encode({ data: Buffer.from('abc') });
      const decoded = codec.decode(payload) as { data: Buffer };
      payload.fill(0);
      expect(decoded.data.toString()).toBe('abc');
      expect(decoded.data.buffer).not.toBe(payload.buffer);
    });
  });

  describe('round trip of collections', () => {
    it('arrays: empty, nested, mixed, with undefined items and holes', () => {
      expect(roundTrip([])).toEqual([]);
      const mixed = [1, 'two', null, true, [3, [4, []]], { five: 5 }, 6.5];
      expect(roundTrip(mixed)).toEqual(mixed);
      const withUndefined = roundTrip([1, undefined, 3]) as unknown[];
      expect(withUndefined).toHaveLength(3);
      expect(withUndefined[1]).toBeUndefined();
      // A hole comes back as an undefined item (documented).
      // eslint-disable-next-line no-sparse-arrays -- the hole is what this checks
      const sparse = roundTrip([1, , 3]) as unknown[];
      expect(1 in sparse).toBe(true);
      expect(sparse[1]).toBeUndefined();
      expect(roundTrip(Array.from({ length: 70_000 }, (_, i) => i))).toHaveLength(70_000);
    });

    it('nested plain objects, odd keys, many keys, many shapes', () => {
      const nested = { a: { b: { c: { d: [{ e: 'deep' }] } } }, empty: {} };
      expect(roundTrip(nested)).toEqual(nested);
      const oddKeys = {
        '': 'empty key',
        '0': 'zero',
        '-1': 'minus one',
        'a b': 'space',
        ключ: 'unicode',
        constructor: 'shadows',
        hasOwnProperty: 'shadows too',
      };
      expect(roundTrip(oddKeys)).toEqual(oddKeys);
      const manyKeys = Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i]));
      expect(roundTrip(manyKeys)).toEqual(manyKeys);
      // More distinct shapes than msgpackr's 64 record ids: ids get reused within the payload.
      const shapes = Array.from({ length: 300 }, (_, i) => ({
        [`k${i}`]: i,
        nested: { [`n${i}`]: i },
      }));
      const decoded = roundTrip(shapes) as object[];
      expect(decoded).toEqual(shapes);
      expect(decoded.every((item) => item.constructor === Object)).toBe(true);
    });

    it('Map with string keys', () => {
      const value = new Map([
        ['a', 1],
        ['b', 2],
      ]);
      const decoded = roundTrip(value);
      expect(decoded).toBeInstanceOf(Map);
      expect(decoded).toEqual(value);
      expect([...(decoded as Map<string, number>).keys()]).toEqual(['a', 'b']);
    });

    it('Map with non-string keys keeps the key types', () => {
      const objectKey = { id: 1 };
      const value = new Map<unknown, unknown>([
        [1, 'number'],
        ['1', 'string'],
        [2n ** 70n, 'bigint'],
        [true, 'boolean'],
        [null, 'null'],
        [new Date(5), 'date'],
        [objectKey, 'object'],
        [[1, 2], 'array'],
      ]);
      const decoded = roundTrip(value) as Map<unknown, unknown>;
      expect(decoded).toBeInstanceOf(Map);
      expect(decoded).toEqual(value);
      const keys = [...decoded.keys()];
      expect(keys.map((key) => typeof key)).toEqual([
        'number',
        'string',
        'bigint',
        'boolean',
        'object',
        'object',
        'object',
        'object',
      ]);
      expect(decoded.get(1)).toBe('number');
      expect(decoded.get('1')).toBe('string');
      expect(decoded.get(2n ** 70n)).toBe('bigint');
      expect(keys[5]).toBeInstanceOf(Date);
      expect(keys[6]).toEqual(objectKey); // equal, not identical: a new object
      expect(Array.isArray(keys[7])).toBe(true);
    });

    it('Map with nested values, and an empty Map', () => {
      const value = new Map<string, unknown>([
        ['inner', new Map([[1, new Map([['x', new Set([1])]])]])],
        ['list', [new Map(), { when: new Date(1) }]],
      ]);
      const decoded = roundTrip(value) as Map<string, unknown>;
      expect(decoded).toEqual(value);
      const inner = decoded.get('inner') as Map<number, Map<string, Set<number>>>;
      expect(inner).toBeInstanceOf(Map);
      expect(inner.get(1)).toBeInstanceOf(Map);
      expect(inner.get(1)!.get('x')).toBeInstanceOf(Set);
      expect(roundTrip(new Map())).toEqual(new Map());
      expect(roundTrip(new Map())).toBeInstanceOf(Map);
    });

    it('a plain object stays an object and a Map stays a Map side by side', () => {
      const value = { object: { a: 1 }, map: new Map([['a', 1]]) };
      const decoded = roundTrip(value) as typeof value;
      expect(decoded.object.constructor).toBe(Object);
      expect(decoded.map).toBeInstanceOf(Map);
      expect(decoded).toEqual(value);
    });

    it('Set of primitives, objects and sets; empty Set', () => {
      const value = new Set<unknown>([1, 'a', 2n, null, { b: 2 }, new Set(['c']), new Date(3)]);
      const decoded = roundTrip(value) as Set<unknown>;
      expect(decoded).toBeInstanceOf(Set);
      expect(decoded).toEqual(value);
      expect(decoded.has(2n)).toBe(true);
      expect([...decoded].find((item) => item instanceof Set)).toEqual(new Set(['c']));
      expect(roundTrip(new Set())).toEqual(new Set());
      expect(roundTrip(new Set())).toBeInstanceOf(Set);
    });

    it('a deep combination of every supported type', () => {
      const value = {
        id: 123,
        name: 'Ada 🚀',
        score: -12.5,
        active: true,
        nothing: null,
        balance: -(2n ** 80n),
        createdAt: new Date('2024-02-29T23:59:59.999Z'),
        avatar: Buffer.from([1, 2, 3]),
        thumbnail: new Uint8Array([4, 5]),
        tags: new Set(['admin', 'beta']),
        history: [
          { at: new Date(1000), delta: 5n, meta: new Map([['ip', '10.0.0.1']]) },
          {
            at: new Date(2000),
            delta: -7n,
            meta: new Map<unknown, unknown>([[1, [Buffer.from('x')]]]),
          },
        ],
        index: new Map<unknown, unknown>([
          [1, { posts: [new Set([new Date(3)])] }],
          ['nested', new Map([[2n, new Uint8Array([6])]])],
        ]),
        matrix: [
          [1, [2, [3, [4, [5]]]]],
          [new Map(), new Set(), {}, []],
        ],
      };
      const decoded = roundTrip(value) as typeof value;
      expect(decoded).toEqual(value);
      expect(decoded.createdAt).toBeInstanceOf(Date);
      expect(typeof decoded.balance).toBe('bigint');
      expect(Buffer.isBuffer(decoded.avatar)).toBe(true);
      expect(Buffer.isBuffer(decoded.thumbnail)).toBe(false);
      expect(decoded.thumbnail).toBeInstanceOf(Uint8Array);
      expect(decoded.tags).toBeInstanceOf(Set);
      expect(decoded.history[0].meta).toBeInstanceOf(Map);
      expect(typeof decoded.history[1].delta).toBe('bigint');
      const bufferInMap = (decoded.history[1].meta.get(1) as Buffer[])[0];
      expect(Buffer.isBuffer(bufferInMap)).toBe(true);
      const nested = decoded.index.get('nested') as Map<bigint, Uint8Array>;
      expect(nested.get(2n)).toBeInstanceOf(Uint8Array);
    });
  });

  describe('documented conversions', () => {
    it('keeps an object property whose value is undefined, and does not throw', () => {
      const decoded = roundTrip({ a: 1, b: undefined, c: { d: undefined } }) as Record<string, unknown>;
      expect(decoded).toEqual({ a: 1, c: {} }); // toEqual ignores undefined properties
      expect('b' in decoded).toBe(true);
      expect(decoded.b).toBeUndefined();
      expect(decoded).toStrictEqual({ a: 1, b: undefined, c: { d: undefined } });
    });

    it('a class instance comes back as a plain object of its own enumerable fields', () => {
      class Point {
        constructor(
          readonly x: number,
          readonly y: number,
        ) {}
        length(): number {
          return Math.hypot(this.x, this.y);
        }
        get label(): string {
          return `${this.x},${this.y}`;
        }
      }
      const decoded = roundTrip(new Point(3, 4));
      expect(decoded).toEqual({ x: 3, y: 4 });
      expect(decoded).not.toBeInstanceOf(Point);
      expect((decoded as object).constructor).toBe(Object);
    });

    it('a class instance with toJSON() is stored as what toJSON returns', () => {
      class Money {
        constructor(
          private readonly cents: bigint,
          private readonly currency: string,
        ) {}
        toJSON() {
          return `${this.cents} ${this.currency}`;
        }
      }
      expect(roundTrip({ price: new Money(999n, 'EUR') })).toEqual({ price: '999 EUR' });
    });

    it('Error and RegExp keep their type; an Error keeps its message, not its stack', () => {
      const error = roundTrip(new TypeError('boom'));
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toBe('boom');
      const regexp = roundTrip(/a+b/gi);
      expect(regexp).toBeInstanceOf(RegExp);
      expect(String(regexp)).toBe('/a+b/gi');
    });

    it('drops symbol-keyed properties', () => {
      expect(roundTrip({ [Symbol('hidden')]: 1, shown: 2 })).toStrictEqual({ shown: 2 });
    });

    it('renames an own __proto__ key to __proto_ and never pollutes prototypes', () => {
      const hostile = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as object;
      const decoded = roundTrip(hostile) as Record<string, unknown>;
      expect(decoded).toEqual({ __proto_: { polluted: true }, a: 1 });
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('encodes shared references (not cycles) as separate equal copies', () => {
      const shared = { id: 1, at: new Date(7) };
      const decoded = roundTrip({ a: shared, b: shared, list: [shared, shared] }) as Record<string, unknown>;
      expect(decoded).toEqual({ a: shared, b: shared, list: [shared, shared] });
      expect(decoded.a).not.toBe(decoded.b);
    });
  });

  describe('payload format', () => {
    it.each([
      ['null', null],
      ['undefined', undefined],
      ['a number', 42],
      ['a string', 'x'],
      ['an object', { a: 1 }],
      ['a Buffer', Buffer.from('x')],
      ['a 100 KB object', { text: 'y'.repeat(100_000) }],
    ])('starts with the 0xC1 magic byte and format version 1 for %s', (_label, value) => {
      const payload = codec.encode(value);
      expect(Buffer.isBuffer(payload)).toBe(true);
      expect(payload[0]).toBe(0xc1);
      expect(payload[1]).toBe(0x01);
      expect(payload.length).toBeGreaterThan(PAYLOAD_HEADER_LENGTH);
    });

    it('never overwrites a payload it returned earlier', () => {
      const values = Array.from({ length: 2000 }, (_, i) => ({
        i,
        text: 'z'.repeat(i % 97),
        when: new Date(i),
        ...(i % 3 === 0 ? { extra: [i] } : {}),
      }));
      const payloads = values.map((value) => codec.encode(value));
      // interleave decodes with new encodes of other shapes
      payloads.forEach((payload, i) => {
        expect(codec.decode(payload)).toEqual(values[i]);
        codec.encode({ other: i, shape: [i] });
      });
    });

    it('decodes what another codec instance (another process) wrote', () => {
      const writer = new MsgpackCacheCodec();
      const reader = new MsgpackCacheCodec();
      for (let i = 0; i < 200; i++) {
        const value = { [`key${i % 80}`]: i, list: [{ a: i }, { b: new Map([[i, i]]) }] };
        expect(reader.decode(writer.encode(value))).toEqual(value);
      }
    });

    it('decodes a payload that is a view into a larger buffer (as a Redis reply can be)', () => {
      const value = { name: 'ä'.repeat(40), n: 1, data: Buffer.from('bytes') };
      const payload = codec.encode(value);
      const socketChunk = Buffer.concat([Buffer.alloc(13, 0xee), payload, Buffer.alloc(29, 0xdd)]);
      const view = socketChunk.subarray(13, 13 + payload.length);
      expect(codec.decode(view)).toEqual(value);
    });
  });

  describe('decode failures', () => {
    it.each([
      ['empty buffer', Buffer.alloc(0)],
      ['one byte', Buffer.from([PAYLOAD_MAGIC])],
      ['the header alone', HEADER],
    ])('rejects a truncated payload: %s', (_label, payload) => {
      const error = expectSerializationError(() => codec.decode(payload), 'decode');
      expect(error.message).toMatch(/too short/);
    });

    it('rejects every truncation of a real payload', () => {
      const payload = codec.encode({
        id: 1,
        name: 'truncate me',
        at: new Date(5),
        tags: new Set(['a', 'b']),
        big: 2n ** 100n,
        bytes: Buffer.from('abcdef'),
        map: new Map([[1, [1.5, 'x']]]),
      });
      for (let length = 0; length < payload.length; length++) {
        expectSerializationError(() => codec.decode(payload.subarray(0, length)), 'decode');
      }
    });

    it('rejects a valid payload followed by extra bytes', () => {
      const payload = Buffer.concat([codec.encode({ a: 1 }), Buffer.from([0x00])]);
      expectSerializationError(() => codec.decode(payload), 'decode');
    });

    it.each([
      ['a JSON object', '{"id":1,"name":"written by another client"}'],
      ['a JSON string', '"hello"'],
      ['a JSON number', '42'],
      ['plain text', 'hello world'],
      ['a UTF-8 string starting with a 2-byte character', 'é'],
    ])('rejects %s written by another client', (_label, text) => {
      const error = expectSerializationError(() => codec.decode(Buffer.from(text)), 'decode');
      expect(error.message).toMatch(/another client/);
    });

    it('rejects bare MessagePack written without the header', () => {
      expectSerializationError(() => codec.decode(pack({ id: 1 })), 'decode');
      expectSerializationError(() => codec.decode(pack('a longer string value')), 'decode');
    });

    it('rejects another format version and says which', () => {
      const payload = Buffer.from(codec.encode({ a: 1 }));
      payload[1] = 0x02;
      const error = expectSerializationError(() => codec.decode(payload), 'decode');
      expect(error.message).toMatch(/format version 2/);
    });

    it('rejects something that is not a Buffer', () => {
      const asString = codec.encode('x').toString('latin1') as unknown as Buffer;
      const error = expectSerializationError(() => codec.decode(asString), 'decode');
      expect(error.message).toMatch(/getBuffer/);
      expectSerializationError(() => codec.decode(null as unknown as Buffer), 'decode');
    });

    it.each([
      ['an unknown extension type', [0xd4, 0x05, 0x00]],
      ['a never-used byte after a value', [0x01, 0xc1]],
      ['an array claiming 4 billion items', [0xdd, 0xff, 0xff, 0xff, 0xff]],
      ['a map claiming 4 billion entries', [0xdf, 0xff, 0xff, 0xff, 0xff]],
      ['a 4 GB string', [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]],
      ['a 4 GB binary', [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00]],
      ['a 4 GB extension', [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01]],
      ['a record definition with 4 billion keys', [0xd4, 0x72, 0x40, 0xdd, 0xff, 0xff, 0xff, 0xff]],
      ['a typed array of an unknown kind', [0xc7, 0x02, 0x74, 0x63, 0x00]],
      ['arrays nested 200,000 deep', [...Array<number>(200_000).fill(0x91), 0xc0]],
    ])('rejects a valid header followed by %s, quickly', (_label, body) => {
      const started = performance.now();
      expectSerializationError(() => codec.decode(Buffer.concat([HEADER, Buffer.from(body)])), 'decode');
      expect(performance.now() - started).toBeLessThan(500);
    });

    it('rejects random bytes without the header (1000 seeds)', () => {
      for (let seed = 1; seed <= 1000; seed++) {
        const garbage = randomBytes(seed, 64);
        if (garbage[0] === PAYLOAD_MAGIC && garbage[1] === PAYLOAD_FORMAT_VERSION) continue;
        expectSerializationError(() => codec.decode(garbage), 'decode');
      }
    });

    it('after a valid header, random bytes throw only CacheSerializationError, never hang (5000 seeds)', () => {
      // A checksum-free format cannot reject random bytes that happen to be one valid MessagePack
      // value (a single byte 0x05 is the number 5). They are rare: fewer than 3% of these cases.
      let decoded = 0;
      for (let seed = 1; seed <= 5000; seed++) {
        const payload = Buffer.concat([HEADER, randomBytes(seed, 64)]);
        const started = performance.now();
        try {
          codec.decode(payload);
          decoded++;
        } catch (error) {
          if (!(error instanceof CacheSerializationError) || error.direction !== 'decode') {
            throw new Error(`seed ${seed}: unexpected ${String(error)}`, { cause: error });
          }
        }
        expect(performance.now() - started).toBeLessThan(200);
      }
      expect(decoded / 5000).toBeLessThan(0.03);
    });

    it('keeps the cause and stays usable after a failure', () => {
      const error = expectSerializationError(
        () => codec.decode(Buffer.concat([HEADER, Buffer.from([0x92, 0x01])])),
        'decode',
      );
      expect(error.cause).toBeInstanceOf(Error);
      expect(codec.decode(codec.encode({ still: 'works' }))).toEqual({ still: 'works' });
    });
  });

  describe('encode failures', () => {
    it.each([
      [
        'an object referencing itself',
        () => {
          const a: Record<string, unknown> = { id: 1 };
          a.self = a;
          return a;
        },
        '$.self',
      ],
      [
        'an array containing itself',
        () => {
          const a: unknown[] = [1];
          a.push(a);
          return a;
        },
        '$[1]',
      ],
      [
        'an indirect cycle',
        () => {
          const author: Record<string, unknown> = { name: 'ada' };
          const post = { title: 't', author };
          author.posts = [post];
          return { post };
        },
        '$.post.author.posts[0]',
      ],
      [
        'a Map value',
        () => {
          const map = new Map<string, unknown>();
          map.set('me', { map });
          return map;
        },
        '$.get("me").map',
      ],
      [
        'a Map key',
        () => {
          const map = new Map<unknown, unknown>();
          map.set([map], 1);
          return map;
        },
        '$.<Map key Array>[0]',
      ],
      [
        'a Set',
        () => {
          const set = new Set<unknown>();
          set.add({ set });
          return set;
        },
        '$.<Set entry>.set',
      ],
      [
        'a class instance',
        () => {
          class Node {
            parent?: Node;
            children: Node[] = [];
          }
          const root = new Node();
          const child = new Node();
          child.parent = root;
          root.children.push(child);
          return root;
        },
        '$.children[0].parent',
      ],
    ])('rejects a cycle through %s and names where', (_label, build, path) => {
      const error = expectSerializationError(() => codec.encode(build()), 'encode');
      expect(error.message).toContain(`circular reference (at ${path})`);
    });

    it('rejects a cycle through a wide object fast, without writing it level by level', () => {
      const wide: Record<string, unknown> = {
        data: Array.from({ length: 10_000 }, (_, i) => `item ${i}`),
      };
      wide.self = wide;
      const started = performance.now();
      expectSerializationError(() => codec.encode(wide), 'encode');
      expect(performance.now() - started).toBeLessThan(100);
    });

    it.each([
      ['top-level', () => () => 1],
      ['as a property', () => ({ id: 1, callback: () => 1 })],
      ['in an array', () => [1, function named() {}]],
      ['as a Map value', () => new Map([['fn', () => 1]])],
      ['as a Map key', () => new Map([[() => 1, 'fn']])],
      ['in a Set', () => new Set([async () => 1])],
      [
        'as a class field',
        () =>
          new (class {
            handler = () => 1;
          })(),
      ],
      ['a class', () => class Foo {}],
    ])('rejects a function %s', (_label, build) => {
      const error = expectSerializationError(() => codec.encode(build()), 'encode');
      expect(error.message).toMatch(/function/);
    });

    it('names the function it rejects', () => {
      const error = expectSerializationError(() => codec.encode({ f: function loadUser() {} }), 'encode');
      expect(error.message).toContain('(loadUser)');
    });

    it('encodes class instances whose methods live on the prototype', () => {
      class User {
        constructor(readonly id: number) {}
        greet(): string {
          return `hi ${this.id}`;
        }
      }
      expect(roundTrip(new User(1))).toEqual({ id: 1 });
    });

    it.each([
      ['top-level', () => Symbol('x')],
      ['as a property', () => ({ s: Symbol('x') })],
      ['in an array', () => [Symbol.iterator]],
      ['as a Map key', () => new Map([[Symbol('k'), 1]])],
    ])('rejects a symbol %s', (_label, build) => {
      const error = expectSerializationError(() => codec.encode(build()), 'encode');
      expect(error.message).toMatch(/symbol/);
    });

    it('rejects nesting too deep for the stack instead of overflowing it', () => {
      let deep: unknown = null;
      for (let i = 0; i < 100_000; i++) deep = [deep];
      const error = expectSerializationError(() => codec.encode(deep), 'encode');
      expect(error.message).toMatch(/nested too deeply/);
      expect(error.cause).toBeInstanceOf(RangeError);
    });

    it('encodes nesting a few hundred levels deep', () => {
      const root: Record<string, unknown> = {};
      let node = root;
      for (let i = 0; i < 500; i++) node = node.next = { i };
      expect(roundTrip(root)).toEqual(root);
    });

    it('stays usable after every kind of encode failure', () => {
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      let deep: unknown = null;
      for (let i = 0; i < 100_000; i++) deep = { deep };
      for (const bad of [cyclic, deep, { f: () => 1 }, [Symbol('s')]]) {
        expectSerializationError(() => codec.encode(bad), 'encode');
        const good = { ok: [1, new Date(2), new Map([[3, new Set([4n])]])] };
        expect(roundTrip(good)).toEqual(good);
      }
    });
  });
});

describe('findCycle', () => {
  it('returns undefined for trees and for shared references', () => {
    const shared = { x: 1 };
    expect(findCycle({ a: shared, b: [shared, shared], c: new Map([[shared, shared]]) })).toBe(undefined);
  });

  it('does not look inside Dates, Buffers, typed arrays or instances with toJSON', () => {
    // msgpackr writes what toJSON() returns for a class instance, so its fields do not matter.
    class Entity {
      self = this;
      toJSON() {
        return { id: 1 };
      }
    }
    expect(findCycle({ at: new Date(), buf: Buffer.alloc(100), arr: new Float64Array(10) })).toBe(undefined);
    expect(findCycle({ entity: new Entity() })).toBe(undefined);
    expect(codec().decode(codec().encode({ entity: new Entity() }))).toEqual({ entity: { id: 1 } });
    // A plain object's own toJSON is not called by msgpackr, so a plain object is walked.
    const plain: Record<string, unknown> = { toJSON: () => 'ignored' };
    plain.self = plain;
    expect(findCycle(plain)).toBe('$.self');
  });
});

function codec(): CacheCodec {
  return new MsgpackCacheCodec();
}
