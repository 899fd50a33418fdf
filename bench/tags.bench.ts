/**
 * What tags cost. An invalidation writes one epoch and one key per tag and touches no entry, so it
 * should cost the same whether 10 or 1,000,000 entries carry the tag: both are measured, interleaved,
 * against one throwaway redis-server (started here, stopped at the end). For contrast, deleting the
 * same million entries the way a prefix eviction does (SCAN + pipelined UNLINK) is timed once at the
 * end. And what a tag costs a read: `CacheService.get` of a tagged entry (the entry, then its tag's
 * key) against an untagged one, at concurrency 1 and 64.
 *
 * The million entries are written straight into Redis in the library's own entry format (a pipeline
 * of SETs), not through `CacheService.set` (three round trips each), and checked: a sample of them
 * reads back before the first invalidation and none after it.
 *
 * Run: npm run bench:tags
 * Knobs: BENCH_ENTRIES (1,000,000), BENCH_ROUND_MS (250), BENCH_ROUNDS (9), BENCH_DEADLINE_S (240).
 */
import 'reflect-metadata';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { cpus } from 'node:os';
import type { Redis } from 'ioredis';
import { CacheService, RedisCacheModule } from '../lib/index.js';
import { encodeEntry } from '../lib/core/cache-entry.js';
import { engineOf } from '../test/support/engine-of.js';
import { createDefaultCodec } from '../lib/serialization/cache-codec.js';
import type { LocalRedisServer } from '../tools/local-redis-server.mjs';
import { interleave, medianRatio, type ContenderResult } from './support/async-harness.js';
import { packageVersion } from './support/package-version.js';
import { runBench } from './support/run-bench.js';

const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 1_000_000);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 250);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 240);
const NAMESPACE = 'tags-bench';
const SMALL = 10;
/** SETs per pipeline while the entries are written. */
const BATCH = 10_000;

async function main(server: LocalRedisServer): Promise<void> {
  @Module({ imports: [RedisCacheModule.forRoot({ redis: server.url, namespace: NAMESPACE, ttl: '1h' })] })
  class TagsBenchModule {}

  const app: INestApplicationContext = await NestFactory.createApplicationContext(TagsBenchModule, { logger: false });
  try {
    const cache = app.get(CacheService);
    const engine = engineOf(app);
    const client = cache.client as Redis;
    console.log(
      `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, ioredis ${packageVersion('ioredis')}, ` +
        `redis-server on loopback; ${cpus().length} CPUs (${cpus()[0]?.model.trim()})`,
    );

    // The tag keys exist (created by a first write through the library), then the entries are
    // written with an epoch read after that, as a load starting now would carry.
    await cache.set('small:seed', 0, { tags: 'small' });
    await cache.set('big:seed', 0, { tags: 'big' });
    const epoch = (await engine.readEpoch())!;
    const codec = createDefaultCodec();
    const written = performance.now();
    await writeEntries(client, codec, 'small', SMALL, epoch);
    await writeEntries(client, codec, 'big', ENTRIES, epoch);
    const info = await client.info('memory');
    const usedMb = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / 2 ** 20;
    console.log(
      `wrote ${SMALL} entries tagged 'small' and ${ENTRIES.toLocaleString('en-US')} tagged 'big' in ` +
        `${((performance.now() - written) / 1_000).toFixed(1)} s; redis used_memory ${usedMb.toFixed(0)} MB`,
    );
    const sample = [0, 1, Math.floor(ENTRIES / 2), ENTRIES - 1];
    for (const i of sample) {
      if ((await cache.get(`big:${i}`)) === undefined)
        throw new Error(`big:${i} does not read back before invalidation`);
    }

    console.log(
      `\ninvalidateTags(tag), concurrency 1, ${ROUNDS} interleaved rounds of ${ROUND_MS} ms after 1 warm-up round`,
    );
    const [small, big] = await interleave(
      [
        { label: `${SMALL} entries under the tag`, op: () => cache.invalidateTags('small') },
        { label: `${ENTRIES.toLocaleString('en-US')} entries under the tag`, op: () => cache.invalidateTags('big') },
      ],
      { concurrency: 1, rounds: ROUNDS, roundMs: ROUND_MS, warmupRounds: 1 },
    );
    printTable([small!, big!], small!);
    console.log(
      `ratio (${ENTRIES.toLocaleString('en-US')} / ${SMALL}), ops/s: ${medianRatio(big!, small!).toFixed(2)}x`,
    );
    for (const i of sample) {
      if ((await cache.get(`big:${i}`)) !== undefined) throw new Error(`big:${i} still reads back after invalidation`);
    }
    if (cache.stats().errors !== 0) throw new Error(`${cache.stats().errors} cache errors`);

    // What a read pays for a tag: the entry, then its tag's key.
    await cache.set('hot:plain', { id: 1, name: 'plain' });
    await cache.set('hot:tagged', { id: 1, name: 'tagged' }, { tags: 'hot' });
    for (const concurrency of [1, 64]) {
      console.log(`\nCacheService.get, concurrency ${concurrency}`);
      const [plain, tagged] = await interleave(
        [
          { label: 'untagged entry', op: () => cache.get('hot:plain') },
          { label: 'tagged entry (1 tag)', op: () => cache.get('hot:tagged') },
        ],
        { concurrency, rounds: ROUNDS, roundMs: ROUND_MS, warmupRounds: 1 },
      );
      printTable([plain!, tagged!], plain!);
    }

    console.log(`\nfor contrast: deleting the ${ENTRIES.toLocaleString('en-US')} entries by SCAN + pipelined UNLINK`);
    const scanStarted = performance.now();
    const removed = await cache.reclaim('big:');
    console.log(
      `reclaim('big:') removed ${removed.toLocaleString('en-US')} keys in ${((performance.now() - scanStarted) / 1_000).toFixed(2)} s`,
    );
  } finally {
    await app.close();
  }
}

/** Writes `count` entries `${prefix}:${i}` tagged `prefix`, loaded in `epoch`, in pipelines. */
async function writeEntries(
  client: Redis,
  codec: ReturnType<typeof createDefaultCodec>,
  prefix: string,
  count: number,
  epoch: number,
): Promise<void> {
  const freshUntil = Date.now() + 3_600_000;
  for (let start = 0; start < count; start += BATCH) {
    const pipeline = client.pipeline();
    for (let i = start; i < Math.min(count, start + BATCH); i++) {
      const bytes = encodeEntry(codec, { id: i, prefix }, freshUntil, 1, epoch, [prefix]);
      pipeline.set(`${NAMESPACE}:${prefix}:${i}`, bytes, 'PX', 3_600_000);
    }
    await pipeline.exec();
  }
}

function printTable(results: readonly ContenderResult[], floor: ContenderResult): void {
  console.log(
    `${'variant'.padEnd(36)}${'ops/s'.padStart(10)}${'p50 µs'.padStart(10)}${'p99 µs'.padStart(10)}${'ratio'.padStart(9)}`,
  );
  for (const result of results) {
    console.log(
      `${result.label.padEnd(36)}${Math.round(result.opsPerSec).toLocaleString('en-US').padStart(10)}` +
        `${Math.round(result.p50Ms * 1_000)
          .toString()
          .padStart(10)}${Math.round(result.p99Ms * 1_000)
          .toString()
          .padStart(10)}` +
        `${`${medianRatio(result, floor).toFixed(2)}x`.padStart(9)}`,
    );
  }
}

await runBench('tags.bench', DEADLINE_S, main);
