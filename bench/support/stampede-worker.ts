/**
 * One process of the stampede benchmark (bench/stampede.bench.ts forks four of these with an IPC
 * channel). A Nest application context with `RedisCacheModule.forRoot` on the shared Redis and a
 * service whose `@Cacheable` method takes `METHOD_MS` and counts its runs in Redis.
 *
 * Protocol: the worker sends `ready` once it is subscribed to the start channel. Each PUBLISH on
 * that channel (`{ variant, key }`) releases every worker at once: each fires `calls` concurrent
 * calls of the variant's method on `key` and answers with a `round` message (every call's latency,
 * failures, its own method runs). `stop` (or a lost parent) closes the context and exits.
 *
 * argv: redis URL, worker index, calls per round, method duration in ms.
 */
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cacheable, RedisCacheModule } from '../../lib/index.js';
import {
  CACHE_NAMESPACE,
  START_CHANNEL,
  executionsKey,
  type StampedeValue,
  type StartSignal,
  type WorkerMessage,
} from './stampede-protocol.js';

const [redisUrl, workerArg, callsArg, methodMsArg] = process.argv.slice(2);
const WORKER = Number(workerArg);
const CALLS = Number(callsArg);
const METHOD_MS = Number(methodMsArg);

@Injectable()
class StampedeService {
  readonly counter = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  /** Method runs since the last round report: their durations in ms. */
  bodyMs: number[] = [];
  bodyEndedAt: number[] = [];

  @Cacheable({ key: 'stampede:{0}', ttl: 60 })
  async withLock(key: string): Promise<StampedeValue> {
    return this.load(key);
  }

  @Cacheable({ key: 'stampede:{0}', ttl: 60, lock: false })
  async withoutLock(key: string): Promise<StampedeValue> {
    return this.load(key);
  }

  private async load(key: string): Promise<StampedeValue> {
    const started = performance.now();
    await this.counter.incr(executionsKey(key));
    await sleep(METHOD_MS);
    const ended = performance.now();
    this.bodyMs.push(ended - started);
    this.bodyEndedAt.push(performance.timeOrigin + ended);
    return { key, token: `${process.pid}-${started}` };
  }
}

@Module({
  imports: [RedisCacheModule.forRoot({ redis: redisUrl, namespace: CACHE_NAMESPACE })],
  providers: [StampedeService],
})
class StampedeWorkerModule {}

function send(message: WorkerMessage): void {
  process.send?.(message);
}

async function runRound({ variant, key }: StartSignal, releasedAt: number): Promise<void> {
  const latencies: number[] = [];
  const tokens = new Set<string>();
  let failures = 0;
  let wrongValues = 0;
  const method = variant === 'lock' ? service.withLock : service.withoutLock;
  const calls = Array.from({ length: CALLS }, () => {
    const start = performance.now();
    return method.call(service, key).then(
      (value) => {
        latencies.push(performance.now() - start);
        if (value?.key !== key) wrongValues++;
        else tokens.add(value.token);
      },
      () => failures++,
    );
  });
  await Promise.all(calls);
  const lastServedAt = performance.timeOrigin + performance.now();
  const { bodyMs, bodyEndedAt } = service;
  service.bodyMs = [];
  service.bodyEndedAt = [];
  send({
    type: 'round',
    worker: WORKER,
    key,
    releasedAt,
    latencies,
    failures,
    wrongValues,
    tokens: [...tokens],
    bodyMs,
    bodyEndedAt,
    lastServedAt,
  });
}

const app = await NestFactory.createApplicationContext(StampedeWorkerModule, { logger: ['error'] });
const service = app.get(StampedeService);
const subscriber = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
subscriber.on('error', () => undefined);
service.counter.on('error', () => undefined);

let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  subscriber.disconnect();
  service.counter.disconnect();
  await app.close().catch(() => undefined);
  process.exit(code);
};
// The parent is gone (killed, Ctrl-C): nobody will stop this process, so it stops itself.
process.on('disconnect', () => void stop(1));
process.on('message', (message: { type?: string }) => {
  if (message?.type === 'stop') void stop(0);
});

subscriber.on('message', (_channel: string, payload: string) => {
  const releasedAt = performance.timeOrigin + performance.now();
  runRound(JSON.parse(payload) as StartSignal, releasedAt).catch((error: unknown) => {
    console.error(`stampede worker ${WORKER}:`, error);
    void stop(1);
  });
});
await subscriber.subscribe(START_CHANNEL);
await service.counter.ping();
send({ type: 'ready', pid: process.pid });
