// The `compression` option on real Redis: a large value is stored compressed (the raw bytes say so
// and are smaller) and served back deep-equal; instances with another setting, or none, read it (a
// rolling deploy); a small value is stored as it is; a corrupted compressed entry is a miss.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Cacheable, CacheService, RedisCacheModule, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { COMPRESSION_SHIFT, encodeEntry, ENTRY_HEADER_LENGTH, FLAGS_OFFSET } from '../../lib/core/cache-entry.js';
import { createDefaultCodec } from '../../lib/serialization/cache-codec.js';
import {
  COMPRESSION_ALGORITHMS,
  isCompressionAvailable,
  type CompressionAlgorithm,
} from '../../lib/serialization/payload-compression.js';
import { createTestApp, initError, rawRedis, testRedisConnection, uniqueNamespace } from '../support/test-app.js';

const codec = createDefaultCodec();

/** mulberry32: the same value on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const WORDS = 'cache redis nest module service value key ttl order paid shipped blue green large small'.split(' ');

/** A customer's order history, about 50 KB of MessagePack: a Date and a Map in every order. */
function orderHistory(customerId: number) {
  const random = prng(customerId);
  const words = (n: number) => Array.from({ length: n }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ');
  const products = Array.from({ length: 40 }, (_, i) => ({ id: i, sku: `SKU-${1_000 + i}`, name: words(3) }));
  return {
    customer: { id: customerId, email: `customer${customerId}@example.com`, since: new Date(1_700_000_000_000) },
    orders: Array.from({ length: 350 }, (_, i) => ({
      id: customerId * 10_000 + i,
      status: ['placed', 'paid', 'shipped', 'delivered'][i % 4],
      placedAt: new Date(1_700_000_000_000 + i * 3_600_123),
      items: Array.from({ length: 1 + (i % 3) }, () => products[Math.floor(random() * products.length)]),
      note: words(6),
      totals: new Map([
        ['net', Math.round(random() * 100_000) / 100],
        ['tax', Math.round(random() * 20_000) / 100],
      ]),
    })),
  };
}

const profile = (id: number) => ({ id, name: `Customer ${id}`, since: new Date(1_700_000_000_000) });

@Injectable()
class OrdersService {
  loads = 0;

  @Cacheable({ key: 'orders:{0}', ttl: '1h' })
  async history(customerId: number) {
    this.loads++;
    return orderHistory(customerId);
  }

  @Cacheable({ key: 'profile:{0}', ttl: '1h' })
  async profile(id: number) {
    this.loads++;
    return profile(id);
  }
}

describe('compression', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let namespace: string;

  /** An app on this test's namespace with `compression` as given (undefined: the default, off). */
  async function start(compression?: RedisCacheModuleOptions['compression']) {
    const app = await createTestApp({ providers: [OrdersService], cache: { namespace, compression } });
    apps.push(app);
    return { service: app.get(OrdersService), cache: app.get(CacheService) };
  }
  const stored = async (key: string) => (await redis.getBuffer(`${namespace}:${key}`))!;
  /** What the same value takes in Redis uncompressed (no tags, no returned mode: like these entries). */
  const uncompressedLength = (value: unknown) => encodeEntry(codec, value, 0, 0).length;

  beforeEach(() => {
    namespace = uniqueNamespace('compression');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('builds a 50 KB value for these tests', () => {
    expect(codec.encode(orderHistory(1)).length).toBeGreaterThan(45_000);
    expect(codec.encode(orderHistory(1)).length).toBeLessThan(60_000);
  });

  it.each<CompressionAlgorithm>(['gzip', 'brotli'])(
    'stores a 50 KB value compressed with %s (flagged, smaller) and serves it back deep-equal',
    async (algorithm) => {
      const { service, cache } = await start({ algorithm, threshold: 16_384 });
      const expected = orderHistory(7);

      expect(await service.history(7)).toEqual(expected);
      const bytes = await stored('orders:7');
      expect(bytes[FLAGS_OFFSET] >> COMPRESSION_SHIFT).toBe(COMPRESSION_ALGORITHMS[algorithm].code);
      expect(bytes.length).toBeLessThan(uncompressedLength(expected) / 2);

      const hit = await service.history(7);
      expect(service.loads).toBe(1);
      expect(hit).toEqual(expected);
      expect(hit.orders[3].placedAt).toBeInstanceOf(Date);
      expect(hit.orders[3].totals).toBeInstanceOf(Map);
      expect(await cache.get('orders:7')).toEqual(expected);
      expect(cache.stats().byName['OrdersService.history']).toMatchObject({ hits: 1, misses: 1, errors: 0 });
    },
  );

  it('compresses CacheService.set values too', async () => {
    const { cache } = await start(true);
    await cache.set('manual', orderHistory(3));
    expect((await stored('manual'))[FLAGS_OFFSET] >> COMPRESSION_SHIFT).toBe(COMPRESSION_ALGORITHMS.gzip.code);
    expect(await cache.get('manual')).toEqual(orderHistory(3));
  });

  it('is read by an instance with compression off, and by one with another algorithm (a rolling deploy)', async () => {
    const writer = await start({ algorithm: 'gzip' });
    const plain = await start();
    const brotli = await start({ algorithm: 'brotli' });
    await writer.service.history(11);
    expect((await stored('orders:11'))[FLAGS_OFFSET]).not.toBe(0);

    expect(await plain.service.history(11)).toEqual(orderHistory(11));
    expect(await brotli.service.history(11)).toEqual(orderHistory(11));
    expect(plain.service.loads + brotli.service.loads).toBe(0); // both hits
    expect(plain.cache.stats().errors + brotli.cache.stats().errors).toBe(0);

    // And the other way round: what the instance without compression writes, the others read.
    await plain.service.history(12);
    expect((await stored('orders:12'))[FLAGS_OFFSET]).toBe(0);
    expect(await writer.service.history(12)).toEqual(orderHistory(12));
    expect(writer.service.loads).toBe(1); // the first write only
  });

  it('stores a value below the threshold as it is', async () => {
    const { service } = await start({ threshold: 16_384 });
    await service.profile(5);
    const bytes = await stored('profile:5');
    expect(bytes[FLAGS_OFFSET]).toBe(0);
    expect(bytes.subarray(ENTRY_HEADER_LENGTH)).toEqual(codec.encode(profile(5)));
    expect(await service.profile(5)).toEqual(profile(5));
    expect(service.loads).toBe(1);
  });

  const BAD_OPTIONS: Array<[RedisCacheModuleOptions['compression'], RegExp]> = [
    [{ threshold: -1 }, /compression\.threshold must be a whole number of bytes >= 0/],
    [{ algorithm: 'lz4' as never }, /compression\.algorithm must be 'gzip', 'brotli', 'zstd' \(got 'lz4'\)/],
    [{ algorithm: 'brotli', level: 12 }, /compression\.level must be an integer from 0 to 11 for brotli/],
  ];
  if (!isCompressionAvailable('zstd')) {
    BAD_OPTIONS.push([{ algorithm: 'zstd' }, /compression\.algorithm 'zstd' needs a Node\.js whose node:zlib has it/]);
  }
  it.each(BAD_OPTIONS)(
    'refuses compression %j at bootstrap (a RedisCacheConfigError)',
    async (compression, message) => {
      const moduleRef = await Test.createTestingModule({
        imports: [RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace, compression })],
        providers: [OrdersService],
      }).compile();
      expect(await initError(moduleRef.createNestApplication({ logger: false }))).toMatch(message);
    },
  );

  it('reads a corrupted compressed entry as a miss: the method runs, the right value is returned and stored', async () => {
    const { service, cache } = await start({ algorithm: 'gzip' });
    await service.history(9);
    const bytes = await stored('orders:9');
    // A byte in the middle of the gzip stream, after the header and the stated length.
    const at = ENTRY_HEADER_LENGTH + 4 + Math.floor((bytes.length - ENTRY_HEADER_LENGTH - 4) / 2);
    await redis.setrange(`${namespace}:orders:9`, at, Buffer.from([bytes[at] ^ 0xff]));
    expect((await stored('orders:9'))[at]).toBe(bytes[at] ^ 0xff);

    expect(await service.history(9)).toEqual(orderHistory(9));
    expect(service.loads).toBe(2);
    expect(cache.stats().byName['OrdersService.history']).toMatchObject({ errors: 1 });

    // Replaced by the fresh value: the next call is a hit.
    expect((await stored('orders:9'))[FLAGS_OFFSET] >> COMPRESSION_SHIFT).toBe(COMPRESSION_ALGORITHMS.gzip.code);
    expect(await service.history(9)).toEqual(orderHistory(9));
    expect(service.loads).toBe(2);
  });
});
