// A child process of test/integration/stampede-processes.spec.ts: one Nest application context with
// the cache on the Redis and namespace the parent gives (STAMPEDE_REDIS_URL, or the JSON list of a
// cluster's nodes in STAMPEDE_REDIS_CLUSTER_NODES; STAMPEDE_NAMESPACE),
// and a service whose @Cacheable methods sleep and count their executions in Redis. On a `run`
// message it fires that many concurrent calls at the given time and reports what they got.
// Compiled by tsc (test/support/tsconfig.stampede-worker.json) into .tmp/, then run with plain node.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cacheable, RedisCacheModule } from '../../lib/index.js';
import {
  executionsKey,
  IMPATIENT_LOCK_WAIT_MS,
  type ParentMessage,
  type RunReport,
  type StampedeMethod,
  type StampedeValue,
  type WorkerMessage,
} from './stampede-protocol.js';
import { plainClient, redisFromEnv, runWorker, sendToParent } from './worker-process.js';

/** The module's `redis` option: the URL, or the cluster's nodes. */
const redis = redisFromEnv('STAMPEDE');
const namespace = process.env.STAMPEDE_NAMESPACE;
if (!redis || !namespace || !process.send) {
  throw new Error(
    'stampede-worker: run me from stampede-processes.spec.ts ' +
      '(IPC, STAMPEDE_REDIS_URL or STAMPEDE_REDIS_CLUSTER_NODES, STAMPEDE_NAMESPACE)',
  );
}

const send = (message: WorkerMessage) => sendToParent(message);

/** Counts executions; not the cache's connection, and its key is outside the namespace. */
const counter = plainClient(redis);
const localExecutions = new Map<string, number>();

@Injectable()
class SlowSource {
  /** The module-wide lease options of forRoot below (the defaults, set explicitly). */
  @Cacheable({ key: 'compute:{0}', ttl: 60 })
  compute(key: string, methodMs: number): Promise<StampedeValue> {
    return this.execute('compute', key, methodMs);
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

  private async execute(method: StampedeMethod, key: string, methodMs: number): Promise<StampedeValue> {
    localExecutions.set(key, (localExecutions.get(key) ?? 0) + 1);
    const execution = await counter.incr(executionsKey(method, key));
    send({ type: 'executing', pid: process.pid, key, execution, at: Date.now() });
    await sleep(methodMs);
    return { key, pid: process.pid, execution, returnedAt: Date.now() };
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
      // Generous: a command past it on a loaded machine would be an outage, which this file does not test.
      commandTimeout: '2s',
    }),
  ],
  providers: [SlowSource],
})
class WorkerModule {}

async function run(source: SlowSource, message: Extract<ParentMessage, { type: 'run' }>): Promise<RunReport> {
  const { method, key, methodMs, calls, startAt } = message;
  await sleep(Math.max(0, startAt - Date.now()));
  const report: RunReport = { values: {}, errors: [], firstEnd: Infinity, lastEnd: 0, localExecutions: 0 };
  const ended = () => {
    const now = Date.now();
    report.firstEnd = Math.min(report.firstEnd, now);
    report.lastEnd = Math.max(report.lastEnd, now);
  };
  await Promise.all(
    Array.from({ length: calls }, () =>
      source[method](key, methodMs).then(
        (value) => {
          ended();
          const json = JSON.stringify(value);
          report.values[json] = (report.values[json] ?? 0) + 1;
        },
        (error: unknown) => {
          ended();
          report.errors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
        },
      ),
    ),
  );
  report.localExecutions = localExecutions.get(key) ?? 0;
  return report;
}

runWorker<ParentMessage>(async () => {
  const app = await NestFactory.createApplicationContext(WorkerModule, { logger: false, abortOnError: false });
  const source = app.get(SlowSource);
  return {
    handle: async (message) => {
      const report = await run(source, message);
      send({ type: 'done', pid: process.pid, key: message.key, report });
    },
    close: () => Promise.allSettled([app.close(), counter.quit()]),
  };
});
