// A child process of test/integration/l1-processes.spec.ts: one Nest application context with the
// cache and its in-process tier (`l1`) on the Redis and namespace the parent gives (L1_REDIS_URL, or
// the JSON list of a cluster's nodes in L1_REDIS_CLUSTER_NODES; L1_NAMESPACE), and a service whose
// `@Cacheable doc(id)` reads a document from an in-memory database of this process and whose
// `@CachePut update(id, version)` changes it there and in the cache. The parent makes one worker
// update and another read in a loop, and compares the times they report.
// Compiled by tsc (test/support/tsconfig.l1-worker.json) into .tmp/, then run with plain node.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cacheable, CachePut, CacheService, RedisCacheModule } from '../../lib/index.js';
import {
  DOC_METHOD,
  type Doc,
  type DocCounts,
  type ParentMessage,
  type WatchReport,
  type WorkerMessage,
} from './l1-protocol.js';
import { redisFromEnv, runWorker, sendToParent } from './worker-process.js';

/** The module's `redis` option: the URL, or the cluster's nodes. */
const redis = redisFromEnv('L1');
const namespace = process.env.L1_NAMESPACE;
if (!redis || !namespace || !process.send) {
  throw new Error(
    'l1-worker: run me from l1-processes.spec.ts (IPC, L1_REDIS_URL or L1_REDIS_CLUSTER_NODES, L1_NAMESPACE)',
  );
}

/** How long the worker waits for its L1 to serve (subscribed) before it gives up booting. */
const L1_SERVING_TIMEOUT_MS = 10_000;
/** How many regressions a watch reports one by one (it counts them all). */
const REPORTED_REGRESSIONS = 20;

const send = (message: WorkerMessage) => sendToParent(message);

/** Wall clock in ms, sub-ms resolution: comparable between processes of one machine. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

/** This process's "database": id -> version (0 for a document never updated here). */
const database = new Map<string, number>();
/** Executions of `doc`: loads from the database, i.e. reads the cache did not answer. */
let loads = 0;

@Injectable()
class Documents {
  @Cacheable({ key: 'doc:{0}', ttl: 60 })
  async doc(id: string): Promise<Doc> {
    loads++;
    return { id, version: database.get(id) ?? 0 };
  }

  @CachePut({ key: 'doc:{0}', ttl: 60 })
  async update(id: string, version: number): Promise<Doc> {
    database.set(id, version);
    return { id, version };
  }
}

@Module({
  imports: [
    RedisCacheModule.forRoot({
      redis,
      namespace,
      l1: { max: 1000, ttl: 60 },
      // Generous: a command past it on a loaded machine would be an outage, which this file does not test.
      commandTimeout: '2s',
    }),
  ],
  providers: [Documents],
})
class WorkerModule {}

function countsOf(cache: CacheService): DocCounts {
  const stats = cache.stats().byName[DOC_METHOD];
  return { hits: stats?.hits ?? 0, misses: stats?.misses ?? 0, l1Hits: stats?.l1Hits ?? 0 };
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Reads until one is served from memory: a miss loads and stores, a Redis hit is kept, then L1. */
async function warm(documents: Documents, cache: CacheService, id: string): Promise<WorkerMessage> {
  const before = countsOf(cache).l1Hits;
  let doc: Doc | undefined;
  let reads = 0;
  while (reads < 10 && countsOf(cache).l1Hits === before) {
    doc = await documents.doc(id);
    reads++;
  }
  return { type: 'warmed', pid: process.pid, doc: doc!, reads, counts: countsOf(cache) };
}

/** Set by `stop`: the running watch ends after its current read. */
let stopWatch: (() => void) | undefined;

/** Reads `doc(id)` one read at a time, yielding to the event loop between reads, until stopped. */
async function watch(documents: Documents, cache: CacheService, id: string): Promise<WatchReport> {
  let stopped = false;
  stopWatch = () => (stopped = true);
  const report: WatchReport = {
    reads: 0,
    before: countsOf(cache),
    after: countsOf(cache),
    loads: 0,
    sightings: [],
    regressions: 0,
    firstRegressions: [],
    errors: [],
  };
  const loadsBefore = loads;
  let highest = -Infinity;
  let lastAt = now();
  let longestPauseMs = 0;
  while (!stopped) {
    try {
      const { version } = await documents.doc(id);
      const at = now();
      longestPauseMs = Math.max(longestPauseMs, at - lastAt);
      lastAt = at;
      report.reads++;
      if (version > highest) {
        highest = version;
        report.sightings.push({ version, at, counts: countsOf(cache), longestPauseMs });
        send({ type: 'saw', pid: process.pid, version, at, longestPauseMs });
        longestPauseMs = 0;
      } else if (version < highest) {
        if (report.regressions++ < REPORTED_REGRESSIONS)
          report.firstRegressions.push({ after: highest, got: version, at });
      }
    } catch (error) {
      report.reads++;
      if (report.errors.length < REPORTED_REGRESSIONS) report.errors.push(describeError(error));
    }
    // Lets the subscriber's messages (and the parent's) in between two reads; a timer rather than
    // setImmediate, so the loop reads about once a millisecond instead of spinning a core for the
    // whole test (other suites run beside it). The delay is measured to within that millisecond.
    await sleep(0);
  }
  stopWatch = undefined;
  report.after = countsOf(cache);
  report.loads = loads - loadsBefore;
  return report;
}

runWorker<ParentMessage>(async () => {
  const app = await NestFactory.createApplicationContext(WorkerModule, { logger: false, abortOnError: false });
  const documents = app.get(Documents);
  const cache = app.get(CacheService);
  // L1 serves (and keeps) nothing until the subscription to the other instances' invalidations is
  // confirmed: a worker reporting ready before that would have the parent measure Redis reads.
  const deadline = performance.now() + L1_SERVING_TIMEOUT_MS;
  while (cache.status().l1 !== 'serving') {
    if (performance.now() > deadline) throw new Error(`L1 not serving after ${L1_SERVING_TIMEOUT_MS} ms`);
    await sleep(10);
  }
  return {
    handle: async (message) => {
      switch (message.type) {
        case 'warm':
          send(await warm(documents, cache, message.id));
          break;
        case 'update': {
          const doc = await documents.update(message.id, message.version);
          send({ type: 'updated', pid: process.pid, doc, resolvedAt: now() });
          break;
        }
        case 'watch':
          send({ type: 'watched', pid: process.pid, report: await watch(documents, cache, message.id) });
          break;
        case 'stop':
          stopWatch?.();
          break;
      }
    },
    close: () => {
      stopWatch?.();
      return app.close();
    },
  };
});
