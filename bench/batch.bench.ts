/**
 * Batch reads (issue 11, item 3): a list of 100 ids at 90% hits, read by a `@Cacheable({ batch })`
 * list loader versus `Promise.all` over 100 single `@Cacheable` calls, on the same values (a user
 * profile each), against a throwaway redis-server (started here, stopped at the end). Each batch asks
 * 90 ids that are cached and 10 never asked before (true misses, loaded and stored by the call), so
 * every batch does the same work whichever form runs it. The two forms use their own keys, so each
 * sees its own 90% hits.
 *
 * Prints median batches/s, p50/p99 latency of a batch and the ratio (measured interleaved in the same
 * run: support/async-harness.ts) at concurrency 1 and 8 (batches in flight), then how many times each
 * method body ran per batch: the list loader exactly once (for its 10 misses), the single method 10
 * times.
 *
 * Run: npm run bench:batch
 * Knobs: BENCH_ROUND_MS (default 250), BENCH_ROUNDS (default 9), BENCH_DEADLINE_S (default 120),
 * BENCH_VARIANTS (single,batch: narrow the run to one form, to profile it), BENCH_MISSES (default 10).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { cpus } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { Cacheable, CacheService, RedisCacheModule } from '../lib/index.js';
import type { LocalRedisServer } from '../tools/local-redis-server.mjs';
import { runBench } from './support/run-bench.js';
import { interleave, medianRatio, type ContenderResult } from './support/async-harness.js';
import { makeUser, type BenchUser } from './support/fixtures.js';
import { packageVersion } from './support/package-version.js';
import { printResultTable } from './support/result-table.js';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 250);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 120);
const WARMUP_ROUNDS = 1;
const BATCH = 100;
/** Ids of a batch never asked before (BENCH_MISSES: 0 for an all-hit batch). */
const MISSES = Number(process.env.BENCH_MISSES ?? 10);
/** Cached ids the hits are drawn from. */
const WARM_IDS = 2_000;
const CONCURRENCY = [1, 8];
/** To profile one form (`node --cpu-prof`): BENCH_VARIANTS=single or batch. */
const VARIANTS = (process.env.BENCH_VARIANTS ?? 'single,batch').split(',').map((variant) => variant.trim());

@Injectable()
class DirectoryService {
  /** Calls of each method body, and the ids the list loader was given in all. */
  singleCalls = 0;
  batchCalls = 0;
  batchIds = 0;

  @Cacheable({ key: 'user:{0}', ttl: '1h' })
  async findUser(id: number): Promise<BenchUser> {
    this.singleCalls++;
    return makeUser(id);
  }

  @Cacheable({ batch: { key: 'users:{0}' }, ttl: '1h' })
  async findUsers(ids: number[]): Promise<BenchUser[]> {
    this.batchCalls++;
    this.batchIds += ids.length;
    return ids.map(makeUser);
  }
}

/** The ids of one batch: 90 cached ones (a window moving through the warm set) and 10 new ones. */
class BatchIds {
  private next = 0;
  private fresh: number;

  constructor(firstFresh: number) {
    this.fresh = firstFresh;
  }

  take(): number[] {
    const ids: number[] = [];
    for (let i = 0; i < BATCH - MISSES; i++) ids.push(((this.next + i * 7) % WARM_IDS) + 1);
    this.next = (this.next + 13) % WARM_IDS;
    // The misses sit among the hits, as a real list would have them.
    for (let i = 0; i < MISSES; i++) ids.splice(i * 9 + 4, 0, this.fresh++);
    return ids;
  }
}

async function main(server: LocalRedisServer): Promise<void> {
  @Module({
    imports: [RedisCacheModule.forRoot({ redis: server.url, namespace: 'bench-batch' })],
    providers: [DirectoryService],
  })
  class BatchBenchModule {}

  const app: INestApplicationContext = await NestFactory.createApplicationContext(BatchBenchModule, {
    logger: false,
  });
  try {
    const service = app.get(DirectoryService);
    const cache = app.get(CacheService);
    const info = await cache.client.info('server');
    console.log(
      `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, ioredis ` +
        `${packageVersion('ioredis')}, redis-server ${/redis_version:(\S+)/.exec(info)?.[1]} on loopback; ` +
        `${cpus().length} CPUs (${cpus()[0]?.model.trim()})`,
    );
    console.log(
      `${ROUNDS} interleaved rounds of ${ROUND_MS} ms per variant after ${WARMUP_ROUNDS} warm-up round; ` +
        `one op = a list of ${BATCH} ids, ${BATCH - MISSES} cached + ${MISSES} never asked before\n`,
    );

    // Warm both forms on the same ids, and check they answer the same values.
    const warm = Array.from({ length: WARM_IDS }, (_, i) => i + 1);
    for (let i = 0; i < warm.length; i += BATCH) {
      await service.findUsers(warm.slice(i, i + BATCH));
      await Promise.all(warm.slice(i, i + BATCH).map((id) => service.findUser(id)));
    }
    const probe = new BatchIds(1_000_000_000).take();
    const viaBatch = await service.findUsers(probe);
    const viaSingles = await Promise.all(probe.map((id) => service.findUser(id)));
    if (!isDeepStrictEqual(viaBatch, probe.map(makeUser)) || !isDeepStrictEqual(viaSingles, viaBatch)) {
      throw new Error('the two forms do not answer the same values');
    }

    const batchIds = new BatchIds(2_000_000_000);
    const singleIds = new BatchIds(3_000_000_000);
    let batches = 0;
    let singleBatches = 0;
    const before = {
      batchCalls: service.batchCalls,
      batchIds: service.batchIds,
      singleCalls: service.singleCalls,
      errors: cache.stats().errors,
    };
    const summary: string[] = [];
    for (const concurrency of CONCURRENCY) {
      const contenders = [
        {
          label: `Promise.all of ${BATCH} @Cacheable calls`,
          op: () => {
            singleBatches++;
            return Promise.all(singleIds.take().map((id) => service.findUser(id)));
          },
        },
        {
          label: `@Cacheable({ batch }) of ${BATCH} ids`,
          op: () => {
            batches++;
            return service.findUsers(batchIds.take());
          },
        },
      ];
      const results = await interleave(
        contenders.filter((_, i) => VARIANTS.includes(i === 0 ? 'single' : 'batch')),
        { concurrency, rounds: ROUNDS, roundMs: ROUND_MS, warmupRounds: WARMUP_ROUNDS },
      );
      if (results.length < contenders.length) {
        printTable(results); // a narrowed (profiling) run
        continue;
      }
      console.log(`concurrency ${concurrency} (batches in flight)`);
      printTable(results);
      summary.push(`  c=${String(concurrency).padEnd(3)} ${medianRatio(results[1], results[0]).toFixed(2)}x`);
    }
    const batchCalls = service.batchCalls - before.batchCalls;
    const batchIdsLoaded = service.batchIds - before.batchIds;
    const singleCalls = service.singleCalls - before.singleCalls;
    const errors = cache.stats().errors - before.errors;

    // This process's CPU per batch (user + system), each form alone for a while: what the ratio of
    // throughput tends to once the machine is CPU-bound, without redis-server's share in it.
    const cpuOf = async (op: () => Promise<unknown>) => {
      const until = performance.now() + ROUND_MS * 4;
      const before = process.cpuUsage();
      let count = 0;
      while (performance.now() < until) {
        await Promise.all(Array.from({ length: 8 }, op));
        count += 8;
      }
      const used = process.cpuUsage(before);
      return (used.user + used.system) / count;
    };
    const singleCpu = await cpuOf(() => Promise.all(singleIds.take().map((id) => service.findUser(id))));
    const batchCpu = await cpuOf(() => service.findUsers(batchIds.take()));
    console.log(
      `CPU of this process per batch: Promise.all ${Math.round(singleCpu)} µs, batch ${Math.round(batchCpu)} µs ` +
        `(${(singleCpu / batchCpu).toFixed(2)}x less)\n`,
    );
    console.log(`batch form / Promise.all of single calls (batches/s, median of per-round ratios):`);
    for (const line of summary) console.log(line);

    console.log(
      `\nmethod bodies run per batch: list loader ${(batchCalls / batches).toFixed(2)} ` +
        `(${batchCalls.toLocaleString('en-US')} calls for ${batches.toLocaleString('en-US')} batches, ` +
        `${(batchIdsLoaded / batchCalls).toFixed(2)} ids each), single method ` +
        `${(singleCalls / singleBatches).toFixed(2)} (${singleCalls.toLocaleString('en-US')} calls for ` +
        `${singleBatches.toLocaleString('en-US')} batches)`,
    );
    const stats = cache.stats();
    if (batchCalls !== batches || batchIdsLoaded !== batches * MISSES) {
      throw new Error(
        `expected exactly one list-loader call of ${MISSES} ids per batch; got ` +
          `${batchCalls} calls, ${batchIdsLoaded} ids for ${batches} batches`,
      );
    }
    // A command past commandTimeout (a loaded machine) fails open: the single form then loads more.
    console.log(`cache errors during the measurement: ${errors}`);
    const byName = stats.byName['DirectoryService.findUsers'];
    console.log(
      `list loader: ${byName.hits.toLocaleString('en-US')} hits, ${byName.misses.toLocaleString('en-US')} misses ` +
        `(${(byName.hitRate * 100).toFixed(1)}% hits, warm-up included)`,
    );
  } finally {
    await app.close();
  }
}

function printTable(results: ContenderResult[]): void {
  printResultTable(results, { rate: 'batches/s', ratio: 'ratio', baseline: results[0] });
}

await runBench('batch bench', DEADLINE_S, main);
