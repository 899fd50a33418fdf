// A child process of test/integration/hostile-input/tls-and-credentials.spec.ts: the cache on nothing
// but a `rediss://` URL (TLS_WORKER_REDIS_URL), in a process that trusts the server's CA or not as
// the parent decides, through NODE_EXTRA_CA_CERTS (Node reads it only when a process starts, so not
// in the jest worker). Booted, it reads one key twice through CacheService.getOrSet; either way it
// prints what happened as one line of JSON. A plain Node process also has one realm: an error of
// Node's own (a TLS one) is `instanceof Error` here, which it is not inside jest's test context.
// Compiled by tsc (test/support/tsconfig.tls-url-worker.json) into .tmp/, then run with plain node.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Redis } from 'ioredis';
import { TLSSocket } from 'node:tls';
import { CacheService, RedisCacheModule } from '../../lib/index.js';

/** What the worker prints: how its bootstrap failed, or what two reads did. */
export type TlsUrlWorkerReport =
  | { bootError: { name: string; message: string }; ms: number }
  | {
      values: number[];
      loads: number;
      hits: number;
      misses: number;
      errors: number;
      /** Whether the module's connection is a TLS socket. */
      encrypted: boolean;
    };

const url = process.env.TLS_WORKER_REDIS_URL;
const namespace = process.env.TLS_WORKER_NAMESPACE;
if (!url || !namespace) throw new Error('tls-url-worker: run me from tls-and-credentials.spec.ts');

@Module({ imports: [RedisCacheModule.forRoot({ redis: url, namespace })] })
class WorkerModule {}

function print(report: TlsUrlWorkerReport): void {
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

const started = performance.now();
const booted = await NestFactory.createApplicationContext(WorkerModule, { logger: false, abortOnError: false }).then(
  (app) => app,
  (error: Error) => print({ bootError: { name: error.name, message: error.message }, ms: performance.now() - started }),
);
if (booted) {
  const cache = booted.get(CacheService);
  let loads = 0;
  const values: number[] = [];
  for (let i = 0; i < 2; i++) values.push(await cache.getOrSet('over-tls', async () => ++loads));
  const { hits, misses, errors } = cache.stats();
  const encrypted = (cache.client as Redis).stream instanceof TLSSocket;
  await booted.close();
  print({ values, loads, hits, misses, errors, encrypted });
}
