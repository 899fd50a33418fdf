// A child process of test/integration/hostile-input/concurrent-writes.spec.ts: one Nest application
// context with the cache on the Redis and namespace the parent gives (REORDER_REDIS_URL, or the JSON
// list of a cluster's nodes in REORDER_REDIS_CLUSTER_NODES; REORDER_NAMESPACE), and a service whose
// `@CachePut update(id)` "commits" to a database (an INCR of a plain Redis counter outside the
// namespace, under REORDER_DB_PREFIX) and returns the committed number, with random waits before and
// after the commit so the order of the commits and the order in which the cache's writes land differ.
// On a `run` message it fires the calls the parent scheduled (ids, start offsets and waits, drawn by
// the parent from its seed) and reports what each got, with a trace of each write for diagnosis.
// The parent/worker protocol is the types below (the spec imports them as types only).
// Compiled by tsc (test/support/tsconfig.reorder-worker.json) into .tmp/, then run with plain node.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CacheEngine } from '../../lib/core/cache-engine.js';
import { engineOf } from './engine-of.js';
import { writeUnguarded } from './unguarded-writes.js';
import { CachePut, RedisCacheModule } from '../../lib/index.js';
import { plainClient, redisFromEnv, runWorker, sendToParent } from './worker-process.js';

/** One call of `update` as the parent scheduled it. */
export interface CallPlan {
  id: number;
  /** After the round's start time. */
  startMs: number;
  /** The method waits this long before its commit, */
  beforeMs: number;
  /** and this long after it (before the cache's write). */
  afterMs: number;
}

/** What one call did. Times are wall-clock microseconds (one machine: comparable across processes). */
export interface CallResult extends CallPlan {
  pid: number;
  /** The committed (and returned) number; absent when the call failed. */
  value?: number;
  error?: string;
  /** The invalidation epoch the write read before the method ran (Redis µs): when it began. */
  epoch?: number;
  committedAtUs?: number;
  /** What the cache's write did: WRITE_ENTRY's outcome, or 'set' (guard off: a plain SET). */
  outcome?: 'written' | 'deleted' | 'foreign' | 'set';
  /** When the cache's write returned. */
  wroteAtUs?: number;
}

/** Parent to worker. */
export type ParentMessage =
  | {
      type: 'run';
      /** Names the round in the reply. */
      round: string;
      /** Ordered writes for this round's calls (false: naive writes, see unguarded-writes.ts). */
      guard: boolean;
      /** Epoch ms the round's start offsets count from (the same for every worker). */
      startAt: number;
      calls: CallPlan[];
    }
  | { type: 'exit' };

/** Worker to parent. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'done'; pid: number; round: string; results: CallResult[]; cacheErrors: number }
  | { type: 'fatal'; pid: number; error: string };

/** The module's `redis` option: the URL, or the cluster's nodes. */
const redis = redisFromEnv('REORDER');
const namespace = process.env.REORDER_NAMESPACE;
const dbPrefix = process.env.REORDER_DB_PREFIX;
if (!redis || !namespace || !dbPrefix || !process.send) {
  throw new Error(
    'reorder-worker: run me from concurrent-writes.spec.ts ' +
      '(IPC, REORDER_REDIS_URL or REORDER_REDIS_CLUSTER_NODES, REORDER_NAMESPACE, REORDER_DB_PREFIX)',
  );
}

const send = (message: WorkerMessage) => sendToParent(message);

function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1_000);
}

/** The "database": not the cache's connection, and its keys are outside the namespace. */
const database = plainClient(redis);

/** The record of the call running in this async context (filled by the method and the wrappers below). */
const current = new AsyncLocalStorage<CallResult>();

@Injectable()
class Items {
  @CachePut({ key: 'item:{0}' })
  async update(id: number, waits: Pick<CallPlan, 'beforeMs' | 'afterMs'>): Promise<number> {
    await sleep(waits.beforeMs);
    const value = await database.incr(`${dbPrefix}item:${id}`);
    const record = current.getStore();
    if (record) record.committedAtUs = nowUs();
    await sleep(waits.afterMs);
    return value;
  }
}

@Module({
  imports: [
    RedisCacheModule.forRoot({
      redis,
      namespace,
      // Generous: a command past it on a loaded machine would be an outage, which this file does not test.
      commandTimeout: '2s',
    }),
  ],
  providers: [Items],
})
class WorkerModule {}

/**
 * Records, per call, the epoch its write read and what its write did. Diagnostics only: each wrapper
 * calls the original and returns its result unchanged.
 */
function trace(engine: CacheEngine): void {
  const readEpoch = engine.readEpoch.bind(engine);
  engine.readEpoch = async () => {
    const epoch = await readEpoch();
    const record = current.getStore();
    if (record) record.epoch = epoch;
    return epoch;
  };
  const store = engine.store;
  const write = store.write.bind(store);
  store.write = async (...args: Parameters<typeof write>) => {
    const outcome = await write(...args);
    const record = current.getStore();
    if (record) Object.assign(record, { outcome, wroteAtUs: nowUs() });
    return outcome;
  };
}

/** Records a naive write's plain SET (writeUnguarded's `onSet`), as `trace` records a guarded one. */
function tracePlainSet(): void {
  const record = current.getStore();
  if (record) Object.assign(record, { outcome: 'set', wroteAtUs: nowUs() });
}

/** How long a worker waits, after its calls, for the invalidations a failed cache command held back. */
const SETTLE_TIMEOUT_MS = 5_000;

async function run(
  items: Items,
  engine: CacheEngine,
  message: Extract<ParentMessage, { type: 'run' }>,
): Promise<CallResult[]> {
  await sleep(Math.max(0, message.startAt - Date.now()));
  const results = await Promise.all(
    message.calls.map(async (plan) => {
      const record: CallResult = { ...plan, pid: process.pid };
      await sleep(plan.startMs);
      try {
        record.value = await current.run(record, () => items.update(plan.id, plan));
      } catch (error: unknown) {
        record.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
      return record;
    }),
  );
  // Quiescence: a write that failed left its key to be deleted once Redis answers (fail open);
  // the parent compares the cache with the database only after that.
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (engine.status().pendingInvalidations > 0 && Date.now() < deadline) await sleep(25);
  return results;
}

runWorker<ParentMessage>(async () => {
  const app = await NestFactory.createApplicationContext(WorkerModule, { logger: false, abortOnError: false });
  const items = app.get(Items);
  const engine = engineOf(app);
  trace(engine);
  let restoreGuards: (() => void) | undefined;
  return {
    handle: async (message) => {
      restoreGuards?.();
      restoreGuards = message.guard ? undefined : writeUnguarded(engine, tracePlainSet);
      const errorsBefore = engine.metrics.stats().errors;
      const results = await run(items, engine, message);
      const cacheErrors = engine.metrics.stats().errors - errorsBefore;
      send({ type: 'done', pid: process.pid, round: message.round, results, cacheErrors });
    },
    close: () => Promise.allSettled([app.close(), database.quit()]),
  };
});
