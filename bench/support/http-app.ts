/**
 * One sample app for bench/http.bench.ts, in its own process (forked with an IPC channel) so the
 * load generator never shares its event loop. Listens on a free loopback port and reports it.
 *
 * - `cached`: the sample app exactly as users run it, built by `createSampleApp`.
 * - `uncached`: the same app with one change: `UsersService.findById` is replaced (through
 *   `@nestjs/testing`'s `overrideProvider`) by a subclass whose `findById` calls the repository
 *   directly, without `@Cacheable`. Same routes, pipes, global interceptor, serialization, database
 *   and query; only the cache is out of `GET /users/:id`.
 * - `ceiling`: the same override, but `findById` answers from a plain Map filled with the seeded
 *   users at start (no SQLite, no delay, nothing awaited but the returned promise): a source that
 *   costs nothing, so this app's throughput is what Nest and the HTTP platform allow on this machine.
 *
 * Answers `{ type: 'cpu' }` with the CPU time it has used, and stops on `{ type: 'stop' }`.
 *
 * Configured by environment: BENCH_APP_MODE (cached | uncached | ceiling), BENCH_HTTP_ADAPTER
 * (express | fastify), BENCH_REDIS_URL, BENCH_QUERY_DELAY_MS, BENCH_NAMESPACE. The database is
 * `:memory:`, seeded on start (the same rows in every app).
 */
import 'reflect-metadata';
import { Injectable, type INestApplication, type OnModuleInit } from '@nestjs/common';
import type { AbstractHttpAdapter } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { CacheService } from '../../lib/index.js';
import { AppModule } from '../../sample-app/app.module.js';
import { resolveSampleAppConfig } from '../../sample-app/config/sample-app-config.js';
import { createSampleApp } from '../../sample-app/create-sample-app.js';
import { SEED_USERS } from '../../sample-app/database/seed.js';
import type { User } from '../../sample-app/users/user.model.js';
import { UsersRepository } from '../../sample-app/users/users.repository.js';
import { UsersService } from '../../sample-app/users/users.service.js';

export type HttpAppMode = 'cached' | 'uncached' | 'ceiling';
export type HttpAdapterName = 'express' | 'fastify';
export type HttpAppMessage = { type: 'ready'; port: number; pid: number } | { type: 'cpu'; micros: number };

/** `UsersService` whose `findById` always reads the database. */
@Injectable()
class UncachedUsersService extends UsersService {
  constructor(
    private readonly repository: UsersRepository,
    cache: CacheService,
  ) {
    super(repository, cache);
  }

  override findById(id: number): Promise<User | null> {
    return this.repository.findById(id);
  }
}

/** `UsersService` whose `findById` answers from memory: the seeded users, read once at start. */
@Injectable()
class InMemoryUsersService extends UsersService implements OnModuleInit {
  private readonly byId = new Map<number, User>();

  constructor(
    private readonly repository: UsersRepository,
    cache: CacheService,
  ) {
    super(repository, cache);
  }

  async onModuleInit(): Promise<void> {
    for (let id = 1; id <= SEED_USERS; id++) {
      const user = await this.repository.findById(id);
      if (user) this.byId.set(id, user);
    }
  }

  override findById(id: number): Promise<User | null> {
    return Promise.resolve(this.byId.get(id) ?? null);
  }
}

const mode = process.env.BENCH_APP_MODE as HttpAppMode;
const adapterName = (process.env.BENCH_HTTP_ADAPTER ?? 'express') as HttpAdapterName;
const options = {
  redisUrl: process.env.BENCH_REDIS_URL!,
  dbPath: ':memory:',
  queryDelayMs: Number(process.env.BENCH_QUERY_DELAY_MS ?? 50),
  namespace: process.env.BENCH_NAMESPACE,
};

// The sample app imports the library by its package name (and `/prometheus`). Compiled into
// .tmp/bench, those names must resolve to the compiled sources beside it (http.bench.ts writes
// .tmp/bench/package.json for that), never to a stale dist/: both copies would load, and the app
// would measure the wrong one.
for (const [specifier, path] of [
  ['nestjs-redis-cache', '../../lib/index.js'],
  ['nestjs-redis-cache/prometheus', '../../lib/prometheus/index.js'],
]) {
  const resolved = import.meta.resolve(specifier);
  const expected = new URL(path, import.meta.url).href;
  if (resolved !== expected) throw new Error(`${specifier} resolves to ${resolved}, expected ${expected}`);
}

/** A fresh adapter, or undefined for Nest's default (Express), exactly as the sample app starts. */
function httpAdapter(): AbstractHttpAdapter | undefined {
  if (adapterName === 'express') return undefined;
  if (adapterName === 'fastify') return new FastifyAdapter();
  throw new Error(`BENCH_HTTP_ADAPTER: express or fastify, got ${String(adapterName)}`);
}

async function build(): Promise<INestApplication> {
  const adapter = httpAdapter();
  if (mode === 'cached') return createSampleApp({ ...options, logger: false, httpAdapter: adapter });
  const override = { uncached: UncachedUsersService, ceiling: InMemoryUsersService }[mode];
  if (!override) throw new Error(`BENCH_APP_MODE: cached, uncached or ceiling, got ${mode}`);
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(resolveSampleAppConfig(options))] })
    .overrideProvider(UsersService)
    .useClass(override)
    .compile();
  const app = adapter
    ? moduleRef.createNestApplication(adapter, { logger: false })
    : moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

const app = await build();
await app.listen(0, '127.0.0.1');
const stop = async (code: number) => {
  await app.close().catch(() => undefined);
  process.exit(code);
};
// The parent is gone (killed, Ctrl-C): nobody will stop this process, so it stops itself.
process.on('disconnect', () => void stop(1));
process.on('message', (message: { type?: string }) => {
  if (message?.type === 'stop') void stop(0);
  // CPU time this process has used so far (user + system), so the parent can charge it per request.
  if (message?.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send?.({ type: 'cpu', micros: user + system } satisfies HttpAppMessage);
  }
});
const { port } = app.getHttpServer().address() as AddressInfo;
process.send?.({ type: 'ready', port, pid: process.pid } satisfies HttpAppMessage);
