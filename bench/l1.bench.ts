/**
 * What a value served from the in-process tier (L1) costs, against a plain lru-cache `get` of the
 * same key and value (acceptance goal: an L1 hit within 3x of it). One run, one throwaway
 * redis-server (started here, stopped at the end), one Nest application context with
 * `RedisCacheModule.forRoot({ redis, namespace, l1: { max, ttl } })`. Contenders, each cycling
 * through 1,000 ids (so no single hot map slot) with one call per id, awaited one at a time:
 *   - floor, synchronous: `lru.get(`item:${id}`)` on a `new LRUCache({ max, ttl })` with the L1's
 *     settings, holding the same values, called in a plain loop (no await);
 *   - context: the same get with the key strings L1 itself looks up (`bench:item:${id}`, the
 *     namespace in front: 12-15 characters, so V8 builds them as cons strings, which cost a Map
 *     lookup more than the floor's flat 6-10 character ones);
 *   - floor, async: what a hand-written cached method is,
 *     `async find(id) { const hit = lru.get(`item:${id}`); if (hit !== undefined) return hit; ... }`;
 *   - a `@Cacheable({ key: 'item:{0}', ttl: '1h' })` method served from L1;
 *   - `CacheService.getOrSet(`item:${id}`, loader, { ttl: '1h' })` served from L1 (the same entries);
 *   - for context, the same method with `l1: false`: a Redis hit (a loopback round trip and a decode).
 * The value is a user profile (10 fields, a Date; 216 bytes stored in Redis, header included).
 * Every round runs each contender once for BENCH_ROUND_MS, in an order rotated per round, after a
 * full GC (unmeasured); ns/op is the median over rounds, a ratio the median of per-round ratios.
 * The clock is read once per 1,000 calls (per 50 for the Redis row), not per call. Afterwards the
 * cache's counters must show that every measured L1 call was an L1 hit
 * (`stats().byName[name].l1Hits` and `hits` grew by exactly the number of calls, warm-up rounds
 * included), every Redis-row call a Redis hit, and that no method body or loader ran; otherwise
 * the run fails.
 *
 * Run: npm run bench:l1   (about 25 s; needs redis-server on PATH)
 * Knobs: BENCH_ROUND_MS (default 200), BENCH_ROUNDS (default 15), BENCH_DEADLINE_S (default 120),
 * BENCH_KEY (default `item`: the logical keys are `${BENCH_KEY}:${id}` in every row; a longer one,
 * e.g. `catalog:item`, makes the floor's keys cons strings too), BENCH_VARIANTS to narrow the run,
 * e.g. for `node --cpu-prof` (comma list of lru-sync,lru-sync-ns,lru-async,cacheable,get-or-set,
 * redis), BENCH_REQUEST_TRACE=1 to run every batch of calls inside the metrics' request trace, as
 * under `CacheMetricsInterceptor` (its AsyncLocalStorage is then enabled, which on Node 20 also
 * turns on a promise hook for the whole process, floors included).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { LRUCache } from 'lru-cache';
import { cpus } from 'node:os';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Cacheable, CacheService, RedisCacheModule } from '../lib/index.js';
import { traceRequest } from '../lib/metrics/cache-metrics.js';
import type { LocalRedisServer } from '../tools/local-redis-server.mjs';
import { median } from './support/async-harness.js';
import { makeUser, type BenchUser } from './support/fixtures.js';
import { packageVersion } from './support/package-version.js';
import { runBench } from './support/run-bench.js';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 120);
const REQUEST_TRACE = process.env.BENCH_REQUEST_TRACE === '1';
const WARMUP_ROUNDS = 1;
const NAMESPACE = 'bench';
const KEYS = 1_000;
/** The L1 settings, of the module and of the floor's LRUCache alike: room for every key, and a ttl longer than the run. */
const L1_MAX = 10_000;
const L1_TTL_S = 600;
const VARIANTS = list(process.env.BENCH_VARIANTS, [
  'lru-sync',
  'lru-sync-ns',
  'lru-async',
  'cacheable',
  'get-or-set',
  'redis',
]);
const GET_OR_SET_NAME = 'CacheService.getOrSet';
/** The logical key is `${KEY}:${id}` everywhere (the decorator's template is `${KEY}:{0}`). */
const KEY = process.env.BENCH_KEY ?? 'item';
if (!/^[A-Za-z0-9_:-]+$/.test(KEY)) throw new Error('BENCH_KEY: letters, digits, _ - and : only');

@Injectable()
class ItemService {
  /** How many times a method body ran, i.e. how many calls missed. */
  loads = 0;

  @Cacheable({ key: `${KEY}:{0}`, ttl: '1h', name: 'item' })
  async find(id: number): Promise<BenchUser> {
    this.loads++;
    return makeUser(id);
  }

  /** The same entries, read from Redis on every call. */
  @Cacheable({ key: `${KEY}:{0}`, ttl: '1h', name: 'item (no L1)', l1: false })
  async findWithoutL1(id: number): Promise<BenchUser> {
    this.loads++;
    return makeUser(id);
  }
}

/** A hand-written cached method over a plain lru-cache: the async floor. */
class HandWrittenItems {
  loads = 0;

  constructor(private readonly lru: LRUCache<string, BenchUser>) {}

  async find(id: number): Promise<BenchUser> {
    const hit = this.lru.get(`${KEY}:${id}`);
    if (hit !== undefined) return hit;
    this.loads++;
    const value = makeUser(id);
    this.lru.set(`${KEY}:${id}`, value);
    return value;
  }
}

interface Contender {
  variant: string;
  label: string;
  /** Calls per batch (the clock is read between batches); divides KEYS. */
  batch: number;
  /**
   * Calls ids[from], ids[from + 1], ... ids[from + batch - 1] one after the other and returns how
   * many of them did not return that id's value (0 unless something is broken).
   */
  run: (from: number) => number | Promise<number>;
  /** Calls made, warm-up included, to check against the cache's counters. */
  calls: number;
}

interface Result {
  contender: Contender;
  /** ns per call of each measured round. */
  roundNs: number[];
  nsPerOp: number;
  gcShare: number;
}

const ids = Array.from({ length: KEYS }, (_, i) => i + 1);

// A full GC before each contender's window, as in support/async-harness.ts.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

async function main(server: LocalRedisServer): Promise<void> {
  @Module({
    imports: [
      RedisCacheModule.forRoot({ redis: server.url, namespace: NAMESPACE, l1: { max: L1_MAX, ttl: L1_TTL_S } }),
    ],
    providers: [ItemService],
  })
  class L1BenchModule {}

  const app: INestApplicationContext = await NestFactory.createApplicationContext(L1BenchModule, { logger: false });
  try {
    const service = app.get(ItemService);
    const cache = app.get(CacheService);
    const lru = new LRUCache<string, BenchUser>({ max: L1_MAX, ttl: L1_TTL_S * 1_000 });
    const handWritten = new HandWrittenItems(lru);
    // The same values under the key strings L1 itself uses (the namespace in front).
    const lruNamespaced = new LRUCache<string, BenchUser>({ max: L1_MAX, ttl: L1_TTL_S * 1_000 });
    for (const id of ids) lruNamespaced.set(`${NAMESPACE}:${KEY}:${id}`, makeUser(id));
    const load = (id: number) => {
      service.loads++;
      return Promise.resolve(makeUser(id));
    };

    const redisVersion = /redis_version:(\S+)/.exec(await cache.client.info('server'))?.[1];
    console.log(
      `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, lru-cache ` +
        `${packageVersion('lru-cache')}, ioredis ${packageVersion('ioredis')}, redis-server ${redisVersion} ` +
        `on loopback; ${cpus().length} CPUs (${cpus()[0]?.model.trim()})`,
    );

    // Warm up: the first call of each id loads and stores it in Redis, the next ones keep it in L1
    // once the tier serves (its subscription to the other instances' invalidations is confirmed).
    await warmUp(service, cache, handWritten);
    const bytes = (await cache.client.getBuffer(`${NAMESPACE}:${KEY}:1`))?.length;
    console.log(
      `value: a user profile (10 fields, a Date), ${bytes} bytes stored; ` +
        `${KEYS.toLocaleString('en-US')} keys cycled; l1 and the floor's LRUCache: ` +
        `{ max: ${L1_MAX.toLocaleString('en-US')}, ttl: ${L1_TTL_S} s }` +
        (REQUEST_TRACE ? '; every batch inside a request trace (AsyncLocalStorage on)' : ''),
    );
    console.log(
      `${ROUNDS} interleaved rounds of ${ROUND_MS} ms per contender after ${WARMUP_ROUNDS} warm-up round; ` +
        `ns/op = median of rounds, ratio = median of per-round ratios\n`,
    );

    const before = cache.stats();
    const loadsBefore = service.loads + handWritten.loads;
    const expected = ids.map((id) => id); // what `.id` of each call's value must be

    const all: Contender[] = [
      {
        variant: 'lru-sync',
        label: `floor: lru.get(\`${KEY}:\${id}\`), sync`,
        batch: KEYS,
        run: (from) => {
          let wrong = 0;
          for (let i = from; i < from + KEYS; i++) {
            if (lru.get(`${KEY}:${ids[i]}`)?.id !== expected[i]) wrong++;
          }
          return wrong;
        },
        calls: 0,
      },
      {
        variant: 'lru-sync-ns',
        label: `context: lru.get(\`${NAMESPACE}:${KEY}:\${id}\`), sync`,
        batch: KEYS,
        run: (from) => {
          let wrong = 0;
          for (let i = from; i < from + KEYS; i++) {
            if (lruNamespaced.get(`${NAMESPACE}:${KEY}:${ids[i]}`)?.id !== expected[i]) wrong++;
          }
          return wrong;
        },
        calls: 0,
      },
      {
        variant: 'lru-async',
        label: 'floor: hand-written async find(id)',
        batch: KEYS,
        run: async (from) => {
          let wrong = 0;
          for (let i = from; i < from + KEYS; i++) {
            if ((await handWritten.find(ids[i])).id !== expected[i]) wrong++;
          }
          return wrong;
        },
        calls: 0,
      },
      {
        variant: 'cacheable',
        label: '@Cacheable, L1 hit',
        batch: KEYS,
        run: async (from) => {
          let wrong = 0;
          for (let i = from; i < from + KEYS; i++) {
            if ((await service.find(ids[i])).id !== expected[i]) wrong++;
          }
          return wrong;
        },
        calls: 0,
      },
      {
        variant: 'get-or-set',
        label: 'CacheService.getOrSet, L1 hit',
        batch: KEYS,
        run: async (from) => {
          let wrong = 0;
          for (let i = from; i < from + KEYS; i++) {
            const id = ids[i];
            // As a caller writes it: a key, a loader closure and an options literal per call.
            const value = await cache.getOrSet(`${KEY}:${id}`, () => load(id), { ttl: '1h' });
            if (value.id !== expected[i]) wrong++;
          }
          return wrong;
        },
        calls: 0,
      },
      {
        variant: 'redis',
        label: 'context: @Cacheable, l1: false (Redis hit)',
        batch: 50,
        run: async (from) => {
          let wrong = 0;
          for (let i = from; i < from + 50; i++) {
            if ((await service.findWithoutL1(ids[i])).id !== expected[i]) wrong++;
          }
          return wrong;
        },
        calls: 0,
      },
    ];
    const contenders = all.filter(({ variant }) => VARIANTS.includes(variant));
    if (contenders.length === 0) throw new Error(`BENCH_VARIANTS selects nothing: ${VARIANTS.join(',')}`);

    const traced = REQUEST_TRACE
      ? (run: Contender['run']) => (from: number) => traceRequest({ outcomes: [] }, () => run(from))
      : (run: Contender['run']) => run;
    const results = await interleave(
      contenders.map((contender) => ({ ...contender, run: traced(contender.run) })),
      contenders,
    );
    printTable(results);

    // Every measured call must have been what its row says.
    const after = cache.stats();
    const delta = (name: string, field: 'l1Hits' | 'hits' | 'misses' | 'stale' | 'errors') =>
      (after.byName[name]?.[field] ?? 0) - (before.byName[name]?.[field] ?? 0);
    const problems: string[] = [];
    const callsOf = (variant: string) => contenders.find((c) => c.variant === variant)?.calls ?? 0;
    const expectL1 = (variant: string, name: string) => {
      const calls = callsOf(variant);
      if (delta(name, 'l1Hits') !== calls || delta(name, 'hits') !== calls) {
        problems.push(
          `${name}: ${calls} calls, but l1Hits grew by ${delta(name, 'l1Hits')} and hits by ${delta(name, 'hits')}`,
        );
      }
    };
    expectL1('cacheable', 'item');
    expectL1('get-or-set', GET_OR_SET_NAME);
    const redisCalls = callsOf('redis');
    if (delta('item (no L1)', 'hits') !== redisCalls || delta('item (no L1)', 'l1Hits') !== 0) {
      problems.push(
        `item (no L1): ${redisCalls} calls, but hits grew by ${delta('item (no L1)', 'hits')} ` +
          `and l1Hits by ${delta('item (no L1)', 'l1Hits')}`,
      );
    }
    const loads = service.loads + handWritten.loads - loadsBefore;
    if (loads !== 0) problems.push(`${loads} method bodies or loaders ran during the measurement`);
    if (after.errors !== before.errors) problems.push(`${after.errors - before.errors} cache errors`);
    if (problems.length > 0)
      throw new Error(`not every measured call was what its row says:\n  ${problems.join('\n  ')}`);
    const l1Calls = callsOf('cacheable') + callsOf('get-or-set');
    console.log(
      `\nChecked: ${l1Calls.toLocaleString('en-US')} decorated and getOrSet calls (warm-up included), ` +
        `each counted as an L1 hit; ${redisCalls.toLocaleString('en-US')} Redis hits without L1; ` +
        `no method body or loader ran; 0 cache errors.`,
    );
  } finally {
    await app.close();
  }
}

/**
 * Loads every id, then calls each until all are served from L1 (the tier serves once its
 * subscription is confirmed; a value read before that is not kept). Also checks that every path
 * reads the same value.
 */
async function warmUp(service: ItemService, cache: CacheService, handWritten: HandWrittenItems): Promise<void> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const before = cache.stats().byName.item?.l1Hits ?? 0;
    for (const id of ids) await service.find(id);
    if ((cache.stats().byName.item?.l1Hits ?? 0) - before === KEYS) break;
    if (performance.now() > deadline) throw new Error('L1 does not serve 10 s after the start');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const id of ids) {
    const expected = makeUser(id);
    const values = [
      await handWritten.find(id),
      await service.find(id),
      await cache.getOrSet(`${KEY}:${id}`, () => Promise.resolve(makeUser(id)), { ttl: '1h' }),
      await service.findWithoutL1(id),
    ];
    if (!values.every((value) => isDeepStrictEqual(value, expected))) {
      throw new Error(`the four paths do not read the same value for id ${id}`);
    }
  }
}

/**
 * Runs the contenders interleaved: every round runs each once for ROUND_MS, in an order rotated per
 * round, after a full GC; the GC pauses that began in a contender's windows are its GC share.
 * `measured[i]` is the contender whose `calls` are counted for `wrapped[i]`.
 */
async function interleave(wrapped: Contender[], measured: Contender[]): Promise<Result[]> {
  const roundNs = wrapped.map(() => [] as number[]);
  const windows = wrapped.map(() => [] as Array<[start: number, end: number]>);
  const pauses: PerformanceEntry[] = [];
  const gcObserver = new PerformanceObserver((list) => pauses.push(...list.getEntries()));
  gcObserver.observe({ entryTypes: ['gc'] });
  for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
    for (let step = 0; step < wrapped.length; step++) {
      const index = (Math.max(round, 0) + step) % wrapped.length;
      const { run, batch } = wrapped[index];
      collectGarbage();
      const start = performance.now();
      const deadline = start + ROUND_MS;
      let calls = 0;
      let wrong = 0;
      let from = 0;
      do {
        const outcome = run(from);
        wrong += typeof outcome === 'number' ? outcome : await outcome;
        calls += batch;
        from = (from + batch) % KEYS;
      } while (performance.now() < deadline);
      const end = performance.now();
      measured[index].calls += calls;
      if (wrong !== 0) throw new Error(`${wrapped[index].label}: ${wrong} calls returned the wrong value`);
      if (round >= 0) {
        roundNs[index].push(((end - start) * 1e6) / calls);
        windows[index].push([start, end]);
      }
      await yieldToLoop();
    }
  }
  await yieldToLoop(); // GC entries are delivered asynchronously
  gcObserver.disconnect();
  return wrapped.map((contender, i) => {
    let time = 0;
    let gc = 0;
    for (const [start, end] of windows[i]) {
      time += end - start;
      for (const pause of pauses) if (pause.startTime >= start && pause.startTime < end) gc += pause.duration;
    }
    return {
      contender: measured[i],
      roundNs: roundNs[i],
      nsPerOp: median(roundNs[i]),
      gcShare: time > 0 ? gc / time : 0,
    };
  });
}

/** Median of the per-round ratios of `a`'s ns/op to `b`'s: how many times slower `a` is. */
function slowdown(a: Result, b: Result): number {
  return median(a.roundNs.map((ns, round) => ns / b.roundNs[round]));
}

function printTable(results: Result[]): void {
  const syncFloor = results.find((r) => r.contender.variant === 'lru-sync');
  const asyncFloor = results.find((r) => r.contender.variant === 'lru-async');
  const widths = [Math.max(44, ...results.map((r) => r.contender.label.length)), 10, 6, 13, 13];
  const row = (cells: string[]) =>
    cells.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join(' ');
  const ratio = (result: Result, floor: Result | undefined) => (floor ? `${slowdown(result, floor).toFixed(2)}x` : '-');
  console.log(row(['contender', 'ns/op', 'GC', 'x sync get', 'x async find']));
  for (const result of results) {
    const ns = result.nsPerOp;
    console.log(
      row([
        result.contender.label,
        ns >= 10_000 ? Math.round(ns).toLocaleString('en-US') : ns.toFixed(1),
        `${(result.gcShare * 100).toFixed(0)}%`,
        ratio(result, syncFloor),
        ratio(result, asyncFloor),
      ]),
    );
  }
  const cacheable = results.find((r) => r.contender.variant === 'cacheable');
  if (cacheable && syncFloor && asyncFloor) {
    const goal = (x: number) => `${x.toFixed(2)}x (${x <= 3 ? 'within' : 'NOT within'} 3x)`;
    console.log(
      `\n@Cacheable L1 hit vs plain lru-cache: ${goal(slowdown(cacheable, syncFloor))} the synchronous get, ` +
        `${goal(slowdown(cacheable, asyncFloor))} the hand-written async method`,
    );
  }
}

function list(value: string | undefined, all: string[]): string[] {
  return value ? value.split(',').map((item) => item.trim()) : all;
}

await runBench('l1 bench', DEADLINE_S, main);
