// One process of the cross-process stampede runs: a child of test/integration/stampede-processes.spec.ts
// and of bench/stampede.bench.ts. One Nest application context with the cache on the Redis and
// namespace the parent gives (STAMPEDE_REDIS_URL, or the JSON list of a cluster's nodes in
// STAMPEDE_REDIS_CLUSTER_NODES; STAMPEDE_NAMESPACE; STAMPEDE_COMMAND_TIMEOUT_MS if not the default),
// and a service whose @Cacheable methods sleep and count their executions in Redis (and, for the
// bench's floor, the same method behind an in-process lru-cache `fetch`).
//
// A run fires that many concurrent calls and reports what they got (`done`). It starts either on an
// IPC `run` message, at the time it names (the spec), or on a PUBLISH of the run on
// STAMPEDE_START_CHANNEL (the bench): one message releases every worker at the same instant, with
// no clocks to agree on.
// Compiled by tsc (test/support/tsconfig.stampede-worker.json into .tmp/stampede-worker, or
// bench/tsconfig.json into .tmp/bench), then run with plain node.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import { Cacheable, RedisCacheModule } from '../../lib/index.js';
import {
  executionsKey,
  IMPATIENT_LOCK_WAIT_MS,
  type ParentMessage,
  type RunCommand,
  type RunReport,
  type StampedeMethod,
  type StampedeValue,
  type WorkerMessage,
} from './stampede-protocol.js';
import { plainClient, redisFromEnv, runWorker, sendToParent } from './worker-process.js';

/** The module's `redis` option: the URL, or the cluster's nodes. */
const redis = redisFromEnv('STAMPEDE');
const namespace = process.env.STAMPEDE_NAMESPACE;
const startChannel = process.env.STAMPEDE_START_CHANNEL;
const commandTimeout = process.env.STAMPEDE_COMMAND_TIMEOUT_MS;
if (!redis || !namespace || !process.send) {
  throw new Error(
    'stampede-worker: run me from stampede-processes.spec.ts or stampede.bench.ts ' +
      '(IPC, STAMPEDE_REDIS_URL or STAMPEDE_REDIS_CLUSTER_NODES, STAMPEDE_NAMESPACE)',
  );
}

const send = (message: WorkerMessage) => sendToParent(message);
/** Epoch ms, to the microsecond: processes compare these, and the bench reports fractions of a ms. */
const epochNow = () => performance.timeOrigin + performance.now();

/** Counts executions; not the cache's connection, and its key is outside the namespace. */
const counter = plainClient(redis);
/** This process's executions per key, for the run's report. */
const executions = new Map<string, RunReport['executions']>();

@Injectable()
class SlowSource {
  /** The module-wide lease options of forRoot below (the defaults, set explicitly). */
  @Cacheable({ key: 'compute:{0}', ttl: 60 })
  compute(key: string, methodMs: number): Promise<StampedeValue> {
    return this.execute('compute', key, methodMs);
  }

  /** No cross-process lease: each process runs the method once (in-process single-flight only). */
  @Cacheable({ key: 'noLock:{0}', ttl: 60, lock: false })
  noLock(key: string, methodMs: number): Promise<StampedeValue> {
    return this.execute('noLock', key, methodMs);
  }

  /** Gives up waiting for another process's load after IMPATIENT_LOCK_WAIT_MS and runs itself. */
  @Cacheable({ key: 'impatient:{0}', ttl: 60, lockWait: IMPATIENT_LOCK_WAIT_MS })
  impatient(key: string, methodMs: number): Promise<StampedeValue> {
    return this.execute('impatient', key, methodMs);
  }

  /** A 1 s lease (SHORT_LEASE_TTL_MS): a holder that dies delays the others about that long. */
  @Cacheable({ key: 'shortLease:{0}', ttl: 60, lockTtl: '1s' })
  shortLease(key: string, methodMs: number): Promise<StampedeValue> {
    return this.execute('shortLease', key, methodMs);
  }

  /** The floor of the benchmark: lru-cache's coalescing of concurrent fetches, in this process only. */
  private readonly floor = new LRUCache<string, StampedeValue, number>({
    max: 10_000,
    fetchMethod: (key, _stale, { context }) => this.execute('lruFetch', key, context),
  });

  /** The same method behind an in-process lru-cache `fetch` (no Redis): every process runs it once. */
  lruFetch(key: string, methodMs: number): Promise<StampedeValue> {
    return this.floor.fetch(key, { context: methodMs }) as Promise<StampedeValue>;
  }

  private async execute(method: StampedeMethod, key: string, methodMs: number): Promise<StampedeValue> {
    const startedAt = epochNow();
    const execution = await counter.incr(executionsKey(method, key));
    send({ type: 'executing', pid: process.pid, key, execution, at: epochNow() });
    await sleep(methodMs);
    const endedAt = epochNow();
    executions.set(key, [...(executions.get(key) ?? []), { startedAt, endedAt }]);
    return { key, pid: process.pid, execution, returnedAt: endedAt };
  }
}

@Module({
  imports: [
    RedisCacheModule.forRoot({
      redis,
      namespace,
      lock: true,
      lockTtl: '10s',
      lockWait: 5_000,
      ...(commandTimeout ? { commandTimeout: Number(commandTimeout) } : {}),
    }),
  ],
  providers: [SlowSource],
})
class WorkerModule {}

/** Fires `calls` calls of `method(key, methodMs)` at once, now, and reports what they got. */
async function run(source: SlowSource, { method, key, methodMs, calls }: RunCommand): Promise<void> {
  const releasedAt = epochNow();
  const report: RunReport = {
    values: {},
    errors: [],
    releasedAt,
    latencies: [],
    firstEnd: Infinity,
    lastEnd: 0,
    executions: [],
  };
  const ended = () => {
    const now = epochNow();
    report.firstEnd = Math.min(report.firstEnd, now);
    report.lastEnd = Math.max(report.lastEnd, now);
    return now;
  };
  await Promise.all(
    Array.from({ length: calls }, () => {
      const calledAt = epochNow();
      return source[method](key, methodMs).then(
        (value) => {
          report.latencies.push(ended() - calledAt);
          const json = JSON.stringify(value);
          report.values[json] = (report.values[json] ?? 0) + 1;
        },
        (error: unknown) => {
          ended();
          report.errors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
        },
      );
    }),
  );
  report.executions = executions.get(key) ?? [];
  executions.delete(key);
  send({ type: 'done', pid: process.pid, key, report });
}

runWorker<ParentMessage>(async () => {
  const app = await NestFactory.createApplicationContext(WorkerModule, { logger: false, abortOnError: false });
  const source = app.get(SlowSource);
  // Subscribed before `ready`, so that the parent's first PUBLISH reaches every worker.
  const subscriber = startChannel ? plainClient(redis) : undefined;
  if (subscriber && startChannel) {
    subscriber.on('message', (_channel: string, payload: string) => {
      run(source, JSON.parse(payload) as RunCommand).catch((error: unknown) =>
        send({ type: 'fatal', pid: process.pid, error: String(error) }),
      );
    });
    await subscriber.subscribe(startChannel);
  }
  return {
    handle: async (message) => {
      await sleep(Math.max(0, message.startAt - epochNow()));
      await run(source, message);
    },
    close: () => Promise.allSettled([app.close(), counter.quit(), subscriber?.quit()]),
  };
});
