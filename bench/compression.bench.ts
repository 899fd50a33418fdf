/**
 * What compressing stored values (the `compression` option) buys and costs. Against a throwaway
 * redis-server (started here, stopped at the end), on customer/order/product graphs shaped like the
 * sample app's seeds (users with a bio, orders of products, a Date and a Map in every order) of
 * about 1 KB, 4 KB, 15 KB and 50 KB of MessagePack, it reports:
 *   - CPU alone: µs to compress and to decompress one codec payload, and the size left, for gzip
 *     levels 1, 4 and 6, brotli qualities 4-6 (and 11, brotli's default, once), zstd where Node has it;
 *   - through the module: bytes stored per entry and `@Cacheable` hit throughput at concurrency 1
 *     and 64, with compression off, gzip, brotli and zstd (if available), each as a ratio to off.
 * Every variant is forced to compress (threshold 0), so the small sizes show what a too-low
 * threshold costs. Hits are measured interleaved (support/async-harness.ts): compare ratios within
 * one run, never across runs.
 *
 * Run: npm run bench:compression
 * Knobs: BENCH_ROUND_MS (default 250), BENCH_ROUNDS (default 7), BENCH_DEADLINE_S (default 240),
 * BENCH_CONCURRENCY (1,64), BENCH_SIZES (1k,4k,15k,50k).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { cpus } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { Cacheable, CacheService, RedisCacheModule, type RedisCacheModuleOptions } from '../lib/index.js';
import { createDefaultCodec } from '../lib/serialization/cache-codec.js';
import {
  COMPRESSION_ALGORITHMS,
  compressPayload,
  decompressPayload,
  isCompressionAvailable,
  type CompressionAlgorithm,
  type CompressionSettings,
} from '../lib/serialization/payload-compression.js';
import type { LocalRedisServer } from '../tools/local-redis-server.mjs';
import { interleave, median, medianRatio, type Contender } from './support/async-harness.js';
import { prng } from './support/fixtures.js';
import { packageVersion } from './support/package-version.js';
import { printResultTable } from './support/result-table.js';
import { runBench } from './support/run-bench.js';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 250);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 240);
const WARMUP_ROUNDS = 1;
const MAX_CONCURRENCY = 64;
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? `1,${MAX_CONCURRENCY}`).split(',').map(Number);
const SIZES = (process.env.BENCH_SIZES ?? '1k,4k,15k,50k').split(',');
const HAS_ZSTD = isCompressionAvailable('zstd');

// ---------------------------------------------------------------------------------------------
// Values: a customer (a seeded user of the sample app), their orders, the products in them.
// ---------------------------------------------------------------------------------------------

const FIRST_NAMES = ['Ada', 'Alan', 'Barbara', 'Dennis', 'Edsger', 'Frances', 'Grace', 'Ken', 'Leslie', 'Margaret'];
const LAST_NAMES = ['Lovelace', 'Turing', 'Liskov', 'Ritchie', 'Dijkstra', 'Allen', 'Hopper', 'Thompson'];
const TOPICS = ['caching', 'Redis', 'NestJS', 'SQLite', 'TTL jitter', 'cache stampedes', 'eviction', 'latency'];
const WORDS = (
  'cache redis nest module service value key ttl jitter lock metric latency profile feed session user ' +
  'post comment tag author draft publish archive blue green large small steel oak linen wool über café'
).split(' ');
const STATUSES = ['placed', 'paid', 'shipped', 'delivered', 'returned'];
const EPOCH = Date.UTC(2024, 0, 1);

interface Size {
  id: string;
  name: string;
  /** Orders in the graph: chosen for about 1 KB, 4 KB, 15 KB and 50 KB of MessagePack. */
  orders: number;
}

const ALL_SIZES: Size[] = [
  { id: '1k', name: '~1 KB order graph', orders: 5 },
  { id: '4k', name: '~4 KB order graph', orders: 24 },
  { id: '15k', name: '~15 KB order graph', orders: 90 },
  { id: '50k', name: '~50 KB order graph', orders: 310 },
];

/** Customer `id` with their last `orderCount` orders; the same arguments always give an equal value. */
function orderGraph(id: number, orderCount: number) {
  const random = prng(id * 7_919 + orderCount);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const words = (n: number) => Array.from({ length: n }, () => pick(WORDS)).join(' ');
  const catalog = Array.from({ length: 60 }, (_, i) => ({
    id: 500 + i,
    sku: `SKU-${(100_003 + i * 7_919) % 999_983}`,
    name: `${words(2)} ${pick(['mug', 'chair', 'lamp', 'scarf', 'table', 'rug'])}`,
    priceCents: 500 + Math.floor(random() * 20_000),
    category: pick(['kitchen', 'living', 'garden', 'textiles']),
  }));
  const first = FIRST_NAMES[id % FIRST_NAMES.length];
  const last = LAST_NAMES[Math.floor(id / FIRST_NAMES.length) % LAST_NAMES.length];
  return {
    customer: {
      id,
      name: `${first} ${last}`,
      email: `${first}.${last}.${id}@example.com`.toLowerCase(),
      bio: `Writes about ${pick(TOPICS)}.`,
      createdAt: new Date(EPOCH + id * 3_600_000),
    },
    orders: Array.from({ length: orderCount }, (_, i) => {
      const items = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
        const product = pick(catalog);
        return { product, quantity: 1 + Math.floor(random() * 3) };
      });
      const net = items.reduce((sum, item) => sum + item.product.priceCents * item.quantity, 0);
      return {
        id: id * 100_000 + i,
        status: pick(STATUSES),
        placedAt: new Date(EPOCH + i * 86_400_123 + Math.floor(random() * 1_000)),
        shipTo: { city: pick(['London', 'Leeds', 'Bristol', 'York']), postcode: `N${1 + (i % 9)} ${words(1)}` },
        items,
        note: random() < 0.3 ? words(8) : '',
        totals: new Map([
          ['net', net],
          ['tax', Math.round(net * 0.2)],
        ]),
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// CPU alone: compress and decompress one payload, no Redis.
// ---------------------------------------------------------------------------------------------

/** Median µs of `fn` over samples of about 50 ms each. */
function microseconds(fn: () => unknown): number {
  let batch = 1;
  for (let start = performance.now(); performance.now() - start < 2; batch *= 2) {
    for (let i = 0; i < batch; i++) fn();
  }
  const samples: number[] = [];
  for (let s = 0; s < 9; s++) {
    let calls = 0;
    const start = performance.now();
    while (performance.now() - start < 50) {
      for (let i = 0; i < batch; i++) fn();
      calls += batch;
    }
    samples.push(((performance.now() - start) * 1_000) / calls);
  }
  return median(samples);
}

function cpuTable(sizes: Size[]): void {
  const codec = createDefaultCodec();
  const levels: Array<[CompressionAlgorithm, number]> = [
    ['gzip', 1],
    ['gzip', 4],
    ['gzip', 6],
    ['brotli', 4],
    ['brotli', 5],
    ['brotli', 6],
  ];
  if (HAS_ZSTD) levels.push(['zstd', 1], ['zstd', 3]);
  const widths = [20, 12, 9, 12, 12, 12];
  const row = (cells: string[]) =>
    cells.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join(' ');
  console.log('CPU alone, one payload (median µs per call); codec decode for scale');
  for (const size of sizes) {
    const value = orderGraph(1, size.orders);
    const payload = codec.encode(value);
    const decodeUs = microseconds(() => codec.decode(payload));
    console.log(`${size.name}: ${payload.length} bytes of MessagePack, codec.decode ${decodeUs.toFixed(1)} µs`);
    console.log(row(['algorithm', 'bytes', 'size', 'compress µs', 'inflate µs', 'inflate/decode']));
    const all = size.id === '50k' ? [...levels, ['brotli', 11] as [CompressionAlgorithm, number]] : levels;
    for (const [algorithm, level] of all) {
      const settings: CompressionSettings = { algorithm, level, threshold: 0 };
      const { bytes, code } = compressPayload(payload, settings);
      if (!payload.equals(decompressPayload(bytes, code))) throw new Error(`${algorithm} ${level}: no round trip`);
      const inflateUs = microseconds(() => decompressPayload(bytes, code));
      console.log(
        row([
          `${algorithm} ${level}`,
          String(bytes.length),
          `${((bytes.length / payload.length) * 100).toFixed(0)}%`,
          microseconds(() => compressPayload(payload, settings)).toFixed(1),
          inflateUs.toFixed(1),
          `${((inflateUs / decodeUs) * 100).toFixed(0)}%`,
        ]),
      );
    }
    console.log();
  }
}

// ---------------------------------------------------------------------------------------------
// Through the module: one application context per variant, each on its own namespace.
// ---------------------------------------------------------------------------------------------

@Injectable()
class OrdersService {
  loads = 0;

  @Cacheable({ key: 'orders:{0}:{1}', ttl: '1h' })
  async history(customerId: number, orders: number) {
    this.loads++;
    return orderGraph(customerId, orders);
  }
}

interface Variant {
  id: string;
  compression: RedisCacheModuleOptions['compression'];
}

const VARIANTS: Variant[] = [
  { id: 'off', compression: false },
  { id: `gzip ${COMPRESSION_ALGORITHMS.gzip.levels.default}`, compression: { algorithm: 'gzip', threshold: 0 } },
  {
    id: `brotli ${COMPRESSION_ALGORITHMS.brotli.levels.default}`,
    compression: { algorithm: 'brotli', threshold: 0 },
  },
  ...(HAS_ZSTD
    ? [
        {
          id: `zstd ${COMPRESSION_ALGORITHMS.zstd.levels.default}`,
          compression: { algorithm: 'zstd' as const, threshold: 0 },
        },
      ]
    : []),
];

const ids = Array.from({ length: MAX_CONCURRENCY }, (_, worker) => worker + 1);

async function main(server: LocalRedisServer): Promise<void> {
  const sizes = ALL_SIZES.filter(({ id }) => SIZES.includes(id));
  const raw = new Redis(server.url, { maxRetriesPerRequest: 1 });
  raw.on('error', () => undefined); // only an interrupted run kills the server under it
  const apps: INestApplicationContext[] = [];
  try {
    const redisVersion = /redis_version:(\S+)/.exec(await raw.info('server'))?.[1];
    console.log(
      `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, ioredis ` +
        `${packageVersion('ioredis')}, redis-server ${redisVersion} on loopback; ` +
        `${cpus().length} CPUs (${cpus()[0]?.model.trim()}); zstd in node:zlib: ${HAS_ZSTD ? 'yes' : 'no'}\n`,
    );
    cpuTable(sizes);

    const services: OrdersService[] = [];
    for (const variant of VARIANTS) {
      const namespace = `bench-${variant.id.replace(' ', '')}`;
      @Module({
        // A 5 s commandTimeout: 64 loops of 50 KB hits on a busy 2-core machine can take past the
        // default 250 ms at p99, and a hit that fails open would be measured as a load.
        imports: [
          RedisCacheModule.forRoot({
            redis: server.url,
            namespace,
            commandTimeout: '5s',
            compression: variant.compression,
          }),
        ],
        providers: [OrdersService],
      })
      class CompressionBenchModule {}
      const app = await NestFactory.createApplicationContext(CompressionBenchModule, { logger: false });
      apps.push(app);
      services.push(app.get(OrdersService));
    }

    // Warm every variant (every later call is a hit), check they read the same value, and weigh entries.
    const stored: number[][] = sizes.map(() => VARIANTS.map(() => 0));
    for (const [s, size] of sizes.entries()) {
      for (const [v, variant] of VARIANTS.entries()) {
        const namespace = `bench-${variant.id.replace(' ', '')}`;
        for (const id of ids) await services[v].history(id, size.orders);
        for (const id of ids) {
          if (!isDeepStrictEqual(await services[v].history(id, size.orders), orderGraph(id, size.orders))) {
            throw new Error(`${variant.id}: ${size.name} ${id} does not read back equal`);
          }
          stored[s][v] += await raw.strlen(`${namespace}:orders:${id}:${size.orders}`);
        }
        stored[s][v] /= ids.length;
      }
    }
    const loadsAfterWarmUp = services.reduce((sum, service) => sum + service.loads, 0);

    console.log(
      `@Cacheable hits, ${ROUNDS} interleaved rounds of ${ROUND_MS} ms per variant after ${WARMUP_ROUNDS} ` +
        `warm-up round; one key per loop; ratio = median of per-round ratios to off\n`,
    );
    const summary: string[] = [];
    for (const [s, size] of sizes.entries()) {
      const bytesCells = VARIANTS.map(
        (_, v) => `${Math.round(stored[s][v])} (${(stored[s][v] / stored[s][0]).toFixed(2)}x)`,
      );
      summary.push(
        `${size.name.padEnd(20)} ${'bytes stored'.padEnd(9)} ${bytesCells.map((c) => c.padStart(17)).join('')}`,
      );
      for (const concurrency of CONCURRENCY) {
        const contenders: Contender[] = VARIANTS.map((variant, v) => ({
          label: variant.id,
          op: (worker) => services[v].history(ids[worker], size.orders),
        }));
        const results = await interleave(contenders, {
          concurrency,
          rounds: ROUNDS,
          roundMs: ROUND_MS,
          warmupRounds: WARMUP_ROUNDS,
        });
        console.log(`${size.name}, concurrency ${concurrency}`);
        printResultTable(results, { ratio: 'vs off', baseline: results[0], labelWidth: 12 });
        const cells = results.map(
          (result) =>
            `${Math.round(result.opsPerSec).toLocaleString('en-US')} (${medianRatio(result, results[0]).toFixed(2)}x)`,
        );
        summary.push(
          `${''.padEnd(20)} ${`hits c=${concurrency}`.padEnd(9)} ${cells.map((c) => c.padStart(17)).join('')}`,
        );
      }
    }

    console.log('Summary: per entry and per second, ratio to off');
    console.log(`${''.padEnd(30)} ${VARIANTS.map(({ id }) => id.padStart(17)).join('')}`);
    for (const line of summary) console.log(line);

    const loads = services.reduce((sum, service) => sum + service.loads, 0) - loadsAfterWarmUp;
    const errors = apps.reduce((sum, app) => sum + app.get(CacheService).stats().errors, 0);
    if (loads !== 0 || errors !== 0) {
      throw new Error(`not every measured call was a hit: ${loads} loads, ${errors} cache errors`);
    }
    console.log('\nEvery measured call was a hit: no method body ran after the warm-up, 0 cache errors.');
  } finally {
    await Promise.all(apps.map((app) => app.close()));
    await raw.quit().catch(() => raw.disconnect());
  }
}

await runBench('compression bench', DEADLINE_S, main);
