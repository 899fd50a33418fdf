// Concurrent @CachePut writes across processes, reordered on purpose: two writes whose database
// commits came in the order v1, v2 may reach the cache in either order, and the cache must never end
// up holding v1. At worst the key is absent (a miss). A write reads the invalidation epoch before its
// method runs (when it began); WRITE_ENTRY deletes the key instead of writing when the entry there
// landed after that (the two writes overlapped, and which one carries the newer state is unknown).
//
// Randomized: three node children (test/support/reorder-worker.ts, compiled by tsc into .tmp/), each
// a Nest application on the test Redis of the project (a redis-server, or the 3+3 cluster in the
// cluster project) and one namespace. Each round, every process fires concurrent update(id) calls
// over a few ids; each call waits, "commits" (INCR of a database counter outside the namespace),
// waits again, and returns the committed number, which the decorator writes. Once every call settled
// the cached value of each id must be absent or equal to the database's. The same rounds with
// naive writes (test/support/unguarded-writes.ts: plain SETs) must end stale: the control that shows
// the test would see the reordering.
//
// The seed is printed on failure; REORDER_SEED=<seed> replays the same schedule (the same calls, ids,
// start offsets and waits; the interleaving itself still depends on the machine). REORDER_VERBOSE=1
// prints each run's counts.
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { CacheService } from 'nestjs-redis-cache';
import type { CacheEngine } from '../../../lib/core/cache-engine.js';
import { engineOf } from '../../support/engine-of.js';
import { mulberry32 } from '../../../sample-app/database/seed.js';
import type { CallPlan, CallResult, ParentMessage, WorkerMessage } from '../../support/reorder-worker.js';
import { createTestApp, rawRedis, testRedisConnection, uniqueNamespace } from '../../support/test-app.js';
import {
  compileWorker,
  redisEnv,
  spawnWorker,
  stopWorkers,
  type WorkerHandle,
} from '../../support/worker-processes.js';

const ROOT = process.cwd();
const WORKER_JS = join(ROOT, '.tmp/reorder-worker/test/support/reorder-worker.js');
const PROCESSES = 3;
/** Concurrent calls per process and round, each on one of IDS ids (about 6 writes per id and round). */
const CALLS_PER_PROCESS = 4;
const IDS = 2;
/** Rounds of a run; a run stops early after BUDGET_MS (a slow machine), with at least MIN_ROUNDS done. */
const ROUNDS = 40;
const BUDGET_MS = 12_000;
const MIN_ROUNDS = 10;
/**
 * A round's calls start at random offsets within a window drawn from these (ms): 0 makes every write
 * of an id overlap the others; wider windows let some writes begin after others landed, so the value
 * is kept (the cache must still cache).
 */
const SPREADS_MS = [0, 10, 30];
/** A call waits 0..MAX_WAIT_MS before its commit and again after it, before the cache's write. */
const MAX_WAIT_MS = 8;
/** Between the calls of the round whose writes must not overlap (each takes a few ms). */
const SEQUENTIAL_GAP_MS = 500;
/** How far ahead of now a round starts: room for the message to reach every worker. */
const LEAD_MS = 40;
/** A worker that has not answered a round by then failed. */
const ROUND_TIMEOUT_MS = 15_000;

/** The sample's seeded PRNG, so a failing schedule can be replayed from its seed. */
const prng = mulberry32;

type Worker = WorkerHandle<WorkerMessage, ParentMessage>;

interface RoundResult {
  /** One line per id whose cached value differs from the database (with a trace of its writes). */
  stale: string[];
  /** Ids whose cached value equals the database, and ids absent from the cache. */
  cached: number;
  absent: number;
  errors: string[];
  /** Cache commands that failed in the workers during the round (reported, not expected). */
  cacheErrors: number;
  calls: number;
}

interface RunSummary {
  guard: boolean;
  seed: number;
  rounds: number;
  staleRounds: number;
  staleKeys: number;
  /** Checks (round x id) that found the database's value cached, and found the key absent. */
  cached: number;
  absent: number;
  cacheErrors: number;
  ms: number;
  /** The first stale keys, with their traces. */
  firstStale: string[];
  errors: string[];
}

describe('concurrent @CachePut writes reordered across processes (3 processes, randomized)', () => {
  const namespace = uniqueNamespace('reorder');
  /** The "database" counters: plain keys outside the cache's namespace. */
  const dbPrefix = `${namespace}-db:`;
  const dbKey = (id: number) => `${dbPrefix}item:${id}`;
  const workers: Worker[] = [];
  let reader: INestApplication | undefined;
  let cache: CacheService;
  let engine: CacheEngine;
  let raw: Redis;
  const usedIds = new Set<number>();

  beforeAll(async () => {
    await compileWorker('test/support/tsconfig.reorder-worker.json', WORKER_JS);
    raw = rawRedis();
    reader = await createTestApp({ cache: { redis: testRedisConnection(), namespace } });
    cache = reader.get(CacheService);
    engine = engineOf(reader);
    // Where the workers' cache and "database" go (see reorder-worker.ts).
    const env = {
      ...redisEnv('REORDER', testRedisConnection()),
      REORDER_NAMESPACE: namespace,
      REORDER_DB_PREFIX: dbPrefix,
    };
    for (let n = 0; n < PROCESSES; n++) workers.push(spawnWorker(WORKER_JS, env));
    await Promise.all(workers.map((worker) => worker.ready));
  }, 60_000);

  afterAll(async () => {
    await stopWorkers(workers);
    await reader?.close();
    // One key at a time: on a cluster the counters live on several slots.
    for (const id of usedIds) await raw?.del(dbKey(id));
    raw?.disconnect();
  }, 20_000);

  /** Sends each worker its calls and resolves to what they all reported. */
  async function fire(
    round: string,
    guard: boolean,
    plans: CallPlan[][],
  ): Promise<Array<Extract<WorkerMessage, { type: 'done' }>>> {
    const startAt = Date.now() + LEAD_MS;
    return Promise.all(
      workers.map((worker, index) => {
        // A worker that is gone fails the round (the wait rejects on its exit) without being sent it.
        const done = worker.next(
          (message): message is Extract<WorkerMessage, { type: 'done' }> =>
            message.type === 'done' && message.round === round,
          ROUND_TIMEOUT_MS,
          `its report of ${round}`,
        );
        worker.send({ type: 'run', round, guard, startAt, calls: plans[index]! });
        return done;
      }),
    );
  }

  /** How one id's writes went, ordered by the value they committed (times in µs from the first epoch). */
  function traceOf(calls: CallResult[]): string {
    const origin = Math.min(...calls.map((call) => call.epoch ?? Infinity));
    const at = (us: number | undefined) => (us === undefined ? '?' : String(Math.round(us - origin)));
    return [...calls]
      .sort((x, y) => (x.value ?? 0) - (y.value ?? 0))
      .map(
        (call) =>
          `v${call.value ?? '?'} pid ${call.pid}: began ${at(call.epoch)} committed ${at(call.committedAtUs)} ` +
          `${call.outcome ?? 'no write'} ${at(call.wroteAtUs)}`,
      )
      .join('; ');
  }

  /** One round: the schedule drawn from `seed`, every call settled, then the cache against the database. */
  async function round(seed: number, roundNo: number, guard: boolean, idBase: number): Promise<RoundResult> {
    const random = prng(seed * 1_000 + roundNo + (guard ? 0 : 500));
    const between = (max: number) => Math.floor(random() * (max + 1));
    const spread = SPREADS_MS[Math.floor(random() * SPREADS_MS.length)]!;
    const ids = Array.from({ length: IDS }, (_, i) => idBase + i + 1);
    for (const id of ids) usedIds.add(id);
    const plans = workers.map(() =>
      Array.from({ length: CALLS_PER_PROCESS }, (): CallPlan => ({
        id: ids[Math.floor(random() * IDS)]!,
        startMs: between(spread),
        beforeMs: between(MAX_WAIT_MS),
        afterMs: between(MAX_WAIT_MS),
      })),
    );
    const reports = await fire(`${guard ? 'on' : 'off'}-${roundNo}`, guard, plans);
    const calls = reports.flatMap((report) => report.results);
    const result: RoundResult = {
      stale: [],
      cached: 0,
      absent: 0,
      errors: calls.filter((call) => call.error !== undefined).map((call) => `${call.pid}: ${call.error}`),
      cacheErrors: reports.reduce((sum, report) => sum + report.cacheErrors, 0),
      calls: calls.length,
    };
    for (const id of ids) {
      const mine = calls.filter((call) => call.id === id);
      const db = Number((await raw.get(dbKey(id))) ?? 0);
      // The database holds the last commit of this round (no call failed: checked by the caller).
      if (mine.length > 0 && Math.max(...mine.map((call) => call.value ?? 0)) !== db) {
        result.errors.push(`item:${id}: the database holds ${db}, the calls committed up to ${traceOf(mine)}`);
      }
      const cached = await cache.get<number>(`item:${id}`);
      if (cached === undefined) {
        result.absent++;
      } else if (cached === db) {
        result.cached++;
      } else {
        const entry = await cache.client.getBuffer(engine.userKey(`item:${id}`));
        const origin = Math.min(...mine.map((call) => call.epoch ?? Infinity));
        // The time WRITE_ENTRY stamped it with (a plain SET, with the ordering off, stamps none).
        const stamp = entry && entry.length >= 48 ? entry.readDoubleBE(38) : 0;
        const landed = stamp > 0 ? String(Math.round(stamp - origin)) : 'unstamped';
        result.stale.push(
          `round ${roundNo} (spread ${spread} ms) item:${id}: cached ${cached} (landed ${landed}) ` +
            `but the database has ${db}; writes by commit: ${traceOf(mine)}`,
        );
      }
    }
    return result;
  }

  async function runRounds(seed: number, guard: boolean, idBase: number): Promise<RunSummary> {
    const started = Date.now();
    const summary: RunSummary = {
      guard,
      seed,
      rounds: 0,
      staleRounds: 0,
      staleKeys: 0,
      cached: 0,
      absent: 0,
      cacheErrors: 0,
      ms: 0,
      firstStale: [],
      errors: [],
    };
    for (let r = 0; r < ROUNDS && Date.now() - started < BUDGET_MS; r++) {
      const result = await round(seed, r, guard, idBase);
      summary.rounds++;
      if (result.stale.length > 0) summary.staleRounds++;
      summary.staleKeys += result.stale.length;
      summary.cached += result.cached;
      summary.absent += result.absent;
      summary.cacheErrors += result.cacheErrors;
      summary.firstStale.push(...result.stale.slice(0, Math.max(0, 3 - summary.firstStale.length)));
      summary.errors.push(...result.errors);
      if (summary.errors.length > 0) break;
    }
    summary.ms = Date.now() - started;
    if (process.env.REORDER_VERBOSE) {
      const { firstStale, ...counts } = summary;
      process.stdout.write(`${JSON.stringify(counts)}\n${firstStale.map((line) => `  ${line}\n`).join('')}`);
    }
    return summary;
  }

  function seedOf(): number {
    const fixed = process.env.REORDER_SEED;
    return fixed ? Number(fixed) : Math.floor(Math.random() * 2 ** 31);
  }

  const seed = seedOf();

  it('no round ends with a stale value cached', async () => {
    const summary = await runRounds(seed, true, 0);
    const context = `seed ${seed} (replay: REORDER_SEED=${seed}), ${summary.rounds} rounds`;
    expect({ context, errors: summary.errors.slice(0, 5) }).toEqual({ context, errors: [] });
    expect({ context, staleRounds: summary.staleRounds, firstStale: summary.firstStale }).toEqual({
      context,
      staleRounds: 0,
      firstStale: [],
    });
    expect({ context, enoughRounds: summary.rounds >= MIN_ROUNDS }).toEqual({ context, enoughRounds: true });
  }, 30_000);

  it('writes that do not overlap are kept: the cache still caches (the last one, from each process in turn)', async () => {
    // Not a cache that answers every write by deleting the key. (How many random rounds end cached
    // depends on the machine's speed: on a loaded one every write of a round may overlap the others.)
    const id = 2_001;
    usedIds.add(id);
    const plans = workers.map((_, index): CallPlan[] => [
      { id, startMs: index * SEQUENTIAL_GAP_MS, beforeMs: 0, afterMs: 0 },
    ]);
    const reports = await fire('sequential', true, plans);
    const calls = reports.flatMap((report) => report.results);
    expect(calls.filter((call) => call.error !== undefined)).toEqual([]);
    const db = Number(await raw.get(dbKey(id)));
    expect(db).toBe(Math.max(...calls.map((call) => call.value ?? 0)));
    expect({ trace: traceOf(calls), cached: await cache.get<number>(`item:${id}`) }).toEqual({
      trace: traceOf(calls),
      cached: db,
    });
  }, 30_000);

  it('the same rounds leave stale values with the ordering switched off (naive writes)', async () => {
    const summary = await runRounds(seed, false, 1_000);
    const context = `seed ${seed} (replay: REORDER_SEED=${seed}), ${summary.rounds} rounds`;
    expect({ context, errors: summary.errors.slice(0, 5) }).toEqual({ context, errors: [] });
    expect({ context, enoughRounds: summary.rounds >= MIN_ROUNDS }).toEqual({ context, enoughRounds: true });
    expect({ context, stale: summary.staleRounds > 0 }).toEqual({ context, stale: true });
  }, 30_000);

  it('the workers exit cleanly', async () => {
    for (const worker of workers) worker.send({ type: 'exit' });
    await Promise.all(workers.map((worker) => worker.exited));
    expect(workers.map((worker) => [worker.child.exitCode, worker.child.signalCode])).toEqual(
      workers.map(() => [0, null]),
    );
  }, 10_000);
});
