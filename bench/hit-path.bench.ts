/**
 * What a cache hit costs on top of Redis itself. Against a throwaway redis-server (started here,
 * stopped at the end), with every call a hit on a realistic value, it compares:
 *   - floor: a raw ioredis `getBuffer` of the same key + the library's codec `decode` of the value behind
 *     the entry header, the least
 *     any Redis cache can do for a hit,
 *   - a `@Cacheable` method called on a service of a Nest application context,
 *   - `CacheService.get` of the same key,
 *   - the floor and the `@Cacheable` method again with ioredis auto-pipelining
 *     (`enableAutoPipelining: true`): a second client, and a second application context whose
 *     cache client has it (issue 3, item 5),
 * at concurrency 1 (one loop of sequential awaits) and 64 (64 loops, each with one call in flight).
 * Each loop reads its own key, so in-process single-flight never merges calls; one more row at 64
 * has all loops on one key, where it does. Prints median ops/s, pooled p50/p99 latency, the share
 * of time in GC pauses and the ops/s ratio of each variant to the plain floor, all measured
 * interleaved in the same run (see support/async-harness.ts).
 *
 * Run: npm run bench:hit
 * Knobs: BENCH_ROUND_MS (default 250), BENCH_ROUNDS (default 9), BENCH_DEADLINE_S (default 150).
 * To profile one variant (`node --cpu-prof`), narrow the run with comma lists: BENCH_VARIANTS
 * (floor,cacheable,service,onekey,floor-ap,cacheable-ap), BENCH_PAYLOADS (user,posts),
 * BENCH_CONCURRENCY (1,64).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { cpus } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { Cacheable, CacheService, RedisCacheModule } from '../lib/index.js';
import { ENTRY_HEADER_LENGTH } from '../lib/core/cache-entry.js';
import { createDefaultCodec } from '../lib/serialization/cache-codec.js';
import type { LocalRedisServer } from '../tools/local-redis-server.mjs';
import { runBench } from './support/run-bench.js';
import { interleave, medianRatio, type Contender, type ContenderResult } from './support/async-harness.js';
import { makePosts, makeUser, type BenchPost, type BenchUser } from './support/fixtures.js';
import { packageVersion } from './support/package-version.js';
import { printResultTable } from './support/result-table.js';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 250);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 150);
const WARMUP_ROUNDS = 1;
const NAMESPACE = 'bench';
/** One key per loop at the highest concurrency: ids 1..64. */
const MAX_CONCURRENCY = 64;
const VARIANTS = list(process.env.BENCH_VARIANTS, [
  'floor',
  'cacheable',
  'service',
  'onekey',
  'floor-ap',
  'cacheable-ap',
]);
const PAYLOADS = list(process.env.BENCH_PAYLOADS, ['user', 'posts']);
const CONCURRENCY = list(process.env.BENCH_CONCURRENCY, ['1', String(MAX_CONCURRENCY)]).map(Number);
if (!CONCURRENCY.every((c) => Number.isInteger(c) && c >= 1 && c <= MAX_CONCURRENCY)) {
  throw new Error(`BENCH_CONCURRENCY: integers from 1 to ${MAX_CONCURRENCY}`);
}

@Injectable()
class ProfileService {
  /** How many times a method body ran, i.e. how many calls missed. */
  loads = 0;

  @Cacheable({ key: 'user:{0}', ttl: '1h' })
  async findUser(id: number): Promise<BenchUser> {
    this.loads++;
    return makeUser(id);
  }

  @Cacheable({ key: 'posts:{0}', ttl: '1h' })
  async latestPosts(authorId: number): Promise<BenchPost[]> {
    this.loads++;
    return makePosts(authorId);
  }
}

interface Payload {
  id: string;
  name: string;
  /** The logical key of id `id`, as the decorator's template renders it. */
  key: (id: number) => string;
  expected: (id: number) => unknown;
  decorated: (service: ProfileService, id: number) => Promise<unknown>;
}

const payloads: Payload[] = [
  {
    id: 'user',
    name: 'user profile (10 fields, a Date)',
    key: (id) => `user:${id}`,
    expected: makeUser,
    decorated: (service, id) => service.findUser(id),
  },
  {
    id: 'posts',
    name: '50 posts (8 fields, a Date each)',
    key: (id) => `posts:${id}`,
    expected: (id) => makePosts(id),
    decorated: (service, id) => service.latestPosts(id),
  },
];

const ids = Array.from({ length: MAX_CONCURRENCY }, (_, worker) => worker + 1);

async function main(server: LocalRedisServer): Promise<void> {
  @Module({
    imports: [RedisCacheModule.forRoot({ redis: server.url, namespace: NAMESPACE })],
    providers: [ProfileService],
  })
  class HitPathBenchModule {}

  // The same cache, on the same Redis keys, with a client that has ioredis auto-pipelining: commands
  // issued in one tick of the event loop go out as one write (one pipeline) instead of one each.
  @Module({
    imports: [
      RedisCacheModule.forRoot({
        redis: { host: '127.0.0.1', port: server.port, enableAutoPipelining: true },
        namespace: NAMESPACE,
      }),
    ],
    providers: [ProfileService],
  })
  class AutoPipeliningBenchModule {}

  const app: INestApplicationContext = await NestFactory.createApplicationContext(HitPathBenchModule, {
    logger: false,
  });
  const apApp: INestApplicationContext = await NestFactory.createApplicationContext(AutoPipeliningBenchModule, {
    logger: false,
  });
  const floorClient = new Redis(server.url, { maxRetriesPerRequest: 1 });
  const apFloorClient = new Redis(server.url, { maxRetriesPerRequest: 1, enableAutoPipelining: true });
  // Only an interrupted run kills the server under these clients; don't print ioredis' complaint.
  floorClient.on('error', () => undefined);
  apFloorClient.on('error', () => undefined);
  try {
    const service = app.get(ProfileService);
    const apService = apApp.get(ProfileService);
    const apCache = apApp.get(CacheService);
    const cache = app.get(CacheService);
    const codec = createDefaultCodec();
    // The value behind the entry header (lib/core/cache-entry.ts): the least a cache has to decode.
    const decode = (stored: Buffer | null) => codec.decode(stored!.subarray(ENTRY_HEADER_LENGTH));
    const redisVersion = /redis_version:(\S+)/.exec(await floorClient.info('server'))?.[1];
    console.log(
      `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, ioredis ` +
        `${packageVersion('ioredis')}, redis-server ${redisVersion} on loopback; ` +
        `${cpus().length} CPUs (${cpus()[0]?.model.trim()})`,
    );
    console.log(
      `${ROUNDS} interleaved rounds of ${ROUND_MS} ms per variant after ${WARMUP_ROUNDS} warm-up ` +
        `round; ops/s = median of rounds, p50/p99 = over all measured calls, ratio = median of ` +
        `per-round ratios to the floor\n`,
    );

    // Warm the cache (every later call is a hit) and check all three read the same value.
    for (const payload of payloads) {
      for (const id of ids) await payload.decorated(service, id);
      for (const id of ids) {
        const viaFloor = decode(await floorClient.getBuffer(redisKey(payload.key(id))));
        const viaDecorator = await payload.decorated(service, id);
        const viaService = await cache.get(payload.key(id));
        const viaApFloor = decode(await apFloorClient.getBuffer(redisKey(payload.key(id))));
        const viaApDecorator = await payload.decorated(apService, id);
        const expected = payload.expected(id);
        const values = [viaFloor, viaDecorator, viaService, viaApFloor, viaApDecorator];
        if (!values.every((v) => isDeepStrictEqual(v, expected))) {
          throw new Error(`${payload.name}: the five paths do not read the same value for ${id}`);
        }
      }
    }
    const loadsAfterWarmUp = service.loads + apService.loads;

    const summary: string[] = [];
    for (const payload of payloads.filter(({ id }) => PAYLOADS.includes(id))) {
      const bytes = (await floorClient.getBuffer(redisKey(payload.key(1))))!.length;
      const redisKeys = ids.map((id) => redisKey(payload.key(id)));
      const keys = ids.map((id) => payload.key(id));
      for (const concurrency of CONCURRENCY) {
        const contenders: Array<Contender & { variant: string }> = [
          {
            variant: 'floor',
            label: 'floor: getBuffer + codec.decode',
            op: async (worker) => decode(await floorClient.getBuffer(redisKeys[worker])),
          },
          {
            variant: 'cacheable',
            label: '@Cacheable hit',
            op: (worker) => payload.decorated(service, ids[worker]),
          },
          {
            variant: 'service',
            label: 'CacheService.get',
            op: (worker) => cache.get(keys[worker]),
          },
        ];
        // With every loop on one key, single-flight lets concurrent hits share one GET and decode.
        if (concurrency > 1) {
          contenders.push({
            variant: 'onekey',
            label: '@Cacheable hit, all loops one key',
            op: () => payload.decorated(service, ids[0]),
          });
        }
        contenders.push(
          {
            variant: 'floor-ap',
            label: 'auto-pipelining: floor',
            op: async (worker) => decode(await apFloorClient.getBuffer(redisKeys[worker])),
          },
          {
            variant: 'cacheable-ap',
            label: 'auto-pipelining: @Cacheable hit',
            op: (worker) => payload.decorated(apService, ids[worker]),
          },
        );
        const results = await interleave(
          contenders.filter(({ variant }) => VARIANTS.includes(variant)),
          {
            concurrency,
            rounds: ROUNDS,
            roundMs: ROUND_MS,
            warmupRounds: WARMUP_ROUNDS,
          },
        );
        console.log(`${payload.name}, ${bytes}-byte payload, concurrency ${concurrency}`);
        printTable(results);
        if (results.length < contenders.length) continue; // a narrowed (profiling) run
        const ratio = (variant: string) => {
          const result = results[contenders.findIndex((contender) => contender.variant === variant)];
          return `${medianRatio(result, results[0]).toFixed(2)}x`.padStart(9);
        };
        summary.push(
          `${payload.name.padEnd(34)} c=${String(concurrency).padEnd(3)} ` +
            `${ratio('cacheable')} ${ratio('floor-ap')} ${ratio('cacheable-ap')}`,
        );
      }
    }

    console.log('ops/s / plain floor (1.00x = as fast as getBuffer + decode without auto-pipelining)');
    console.log(`  ${''.padEnd(40)} ${'@Cacheable'.padStart(9)} ${'AP floor'.padStart(9)} ${'AP @Cach.'.padStart(9)}`);
    for (const line of summary) console.log(`  ${line}`);

    const stats = cache.stats();
    const apStats = apCache.stats();
    const loads = service.loads + apService.loads - loadsAfterWarmUp;
    if (loads !== 0 || stats.errors !== 0 || apStats.errors !== 0) {
      throw new Error(
        `not every measured call was a hit: ${loads} loads, ` +
          `${stats.errors + apStats.errors} cache errors during the measurement`,
      );
    }
    console.log(
      `\nEvery measured call was a hit: ${(stats.hits + apStats.hits).toLocaleString('en-US')} decorated ` +
        `hits, no method body ran after the warm-up, 0 cache errors.`,
    );
  } finally {
    await app.close();
    await apApp.close();
    await floorClient.quit().catch(() => floorClient.disconnect());
    await apFloorClient.quit().catch(() => apFloorClient.disconnect());
  }
}

function list(value: string | undefined, all: string[]): string[] {
  return value ? value.split(',').map((item) => item.trim()) : all;
}

function redisKey(key: string): string {
  return `${NAMESPACE}:${key}`;
}

function printTable(results: ContenderResult[]): void {
  const floor = results[0].label.startsWith('floor') ? results[0] : undefined;
  printResultTable(results, { ratio: 'vs floor', baseline: floor });
}

await runBench('hit-path bench', DEADLINE_S, main);
