/**
 * What a cache hit costs on top of Redis itself. Against a throwaway redis-server (started here,
 * stopped at the end), with every call a hit on a realistic value, it compares:
 *   - floor: a raw ioredis `getBuffer` of the same key + the library's codec `decode`, the least
 *     any Redis cache can do for a hit,
 *   - a `@Cacheable` method called on a service of a Nest application context,
 *   - `CacheService.get` of the same key,
 * at concurrency 1 (one loop of sequential awaits) and 64 (64 loops, each with one call in flight).
 * Each loop reads its own key, so in-process single-flight never merges calls; one more row at 64
 * has all loops on one key, where it does. Prints median ops/s, pooled p50/p99 latency, the share
 * of time in GC pauses and the ops/s ratio of each variant to the floor, all measured interleaved
 * in the same run (see support/async-harness.ts).
 *
 * Run: npm run bench:hit
 * Knobs: BENCH_ROUND_MS (default 250), BENCH_ROUNDS (default 9), BENCH_DEADLINE_S (default 90).
 * To profile one variant (`node --cpu-prof`), narrow the run with comma lists: BENCH_VARIANTS
 * (floor,cacheable,service,onekey), BENCH_PAYLOADS (user,posts), BENCH_CONCURRENCY (1,64).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { cpus } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { Cacheable, CacheService, RedisCacheModule } from '../lib/index.js';
import { createDefaultCodec } from '../lib/serialization/cache-codec.js';
import { startLocalRedis, type LocalRedisServer } from '../tools/local-redis-server.mjs';
import { interleave, medianRatio, type Contender, type ContenderResult } from './support/async-harness.js';
import { makePosts, makeUser, type BenchPost, type BenchUser } from './support/fixtures.js';
import { packageVersion } from './support/package-version.js';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 250);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 90);
const WARMUP_ROUNDS = 1;
const NAMESPACE = 'bench';
/** One key per loop at the highest concurrency: ids 1..64. */
const MAX_CONCURRENCY = 64;
const VARIANTS = list(process.env.BENCH_VARIANTS, ['floor', 'cacheable', 'service', 'onekey']);
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

  const app: INestApplicationContext = await NestFactory.createApplicationContext(HitPathBenchModule, {
    logger: false,
  });
  const floorClient = new Redis(server.url, { maxRetriesPerRequest: 1 });
  // Only an interrupted run kills the server under this client; don't print ioredis' complaint.
  floorClient.on('error', () => undefined);
  try {
    const service = app.get(ProfileService);
    const cache = app.get(CacheService);
    const codec = createDefaultCodec();
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
        const viaFloor = codec.decode((await floorClient.getBuffer(redisKey(payload.key(id))))!);
        const viaDecorator = await payload.decorated(service, id);
        const viaService = await cache.get(payload.key(id));
        const expected = payload.expected(id);
        if (![viaFloor, viaDecorator, viaService].every((v) => isDeepStrictEqual(v, expected))) {
          throw new Error(`${payload.name}: the three paths do not read the same value for ${id}`);
        }
      }
    }
    const loadsAfterWarmUp = service.loads;

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
            op: async (worker) => codec.decode((await floorClient.getBuffer(redisKeys[worker]))!),
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
        summary.push(
          `${payload.name.padEnd(34)} c=${String(concurrency).padEnd(3)} ` +
            `${medianRatio(results[1], results[0]).toFixed(2)}x`,
        );
      }
    }

    console.log('@Cacheable hit / floor, ops/s (1.00x = no overhead over getBuffer + decode)');
    for (const line of summary) console.log(`  ${line}`);

    const stats = cache.stats();
    if (service.loads !== loadsAfterWarmUp || stats.errors !== 0) {
      throw new Error(
        `not every measured call was a hit: ${service.loads - loadsAfterWarmUp} loads, ` +
          `${stats.errors} cache errors during the measurement`,
      );
    }
    console.log(
      `\nEvery measured call was a hit: ${stats.hits.toLocaleString('en-US')} decorated hits, ` +
        `no method body ran after the warm-up, 0 cache errors.`,
    );
  } finally {
    await app.close();
    await floorClient.quit().catch(() => floorClient.disconnect());
  }
}

function list(value: string | undefined, all: string[]): string[] {
  return value ? value.split(',').map((item) => item.trim()) : all;
}

function redisKey(key: string): string {
  return `${NAMESPACE}:${key}`;
}

function printTable(results: ContenderResult[]): void {
  const widths = [36, 10, 9, 9, 6, 10];
  const row = (cells: string[]) =>
    cells.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join(' ');
  const floor = results[0].label.startsWith('floor') ? results[0] : undefined;
  console.log(row(['variant', 'ops/s', 'p50 µs', 'p99 µs', 'GC', 'vs floor']));
  for (const result of results) {
    console.log(
      row([
        result.label,
        Math.round(result.opsPerSec).toLocaleString('en-US'),
        (result.p50Ms * 1_000).toFixed(0),
        (result.p99Ms * 1_000).toFixed(0),
        `${(result.gcShare * 100).toFixed(0)}%`,
        floor ? `${medianRatio(result, floor).toFixed(2)}x` : '-',
      ]),
    );
  }
  console.log();
}

// The server is stopped whatever happens: normal end, error, Ctrl-C, or the deadline.
const started = performance.now();
const server = await startLocalRedis();
let exitCode = 0;
const abort = (reason: string, code: number) => {
  console.error(reason);
  void server.kill().finally(() => process.exit(code));
};
const deadline = setTimeout(
  () => abort(`hit-path bench: still running after ${DEADLINE_S} s; stopped`, 1),
  DEADLINE_S * 1_000,
);
deadline.unref();
process.once('SIGINT', () => abort('hit-path bench: interrupted', 130));
process.once('SIGTERM', () => abort('hit-path bench: terminated', 143));
try {
  await main(server);
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  await server.stop();
  clearTimeout(deadline);
}
console.log(`(whole run ${((performance.now() - started) / 1_000).toFixed(1)} s)`);
process.exitCode = exitCode;
