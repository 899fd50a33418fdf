/**
 * One sample app for bench/http.bench.ts, in its own process (forked with an IPC channel) so the
 * load generator never shares its event loop. Listens on a free loopback port and reports it.
 *
 * - `cached`: the sample app exactly as users run it, built by `createSampleApp`.
 * - `uncached`: the same app with one change: `UsersService.findById` is replaced (through
 *   `@nestjs/testing`'s `overrideProvider`) by a subclass whose `findById` calls the repository
 *   directly, without `@Cacheable`. Same routes, pipes, global interceptor, serialization, database
 *   and query; only the cache is out of `GET /users/:id`.
 *
 * Configured by environment: BENCH_APP_MODE (cached | uncached), BENCH_REDIS_URL,
 * BENCH_QUERY_DELAY_MS, BENCH_NAMESPACE. The database is `:memory:`, seeded on start (the same rows
 * in every app).
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { CacheService } from '../../lib/index.js';
import { AppModule } from '../../sample-app/app.module.js';
import { resolveSampleAppConfig } from '../../sample-app/config/sample-app-config.js';
import { createSampleApp } from '../../sample-app/create-sample-app.js';
import type { User } from '../../sample-app/users/user.model.js';
import { UsersRepository } from '../../sample-app/users/users.repository.js';
import { UsersService } from '../../sample-app/users/users.service.js';

export type HttpAppMode = 'cached' | 'uncached';
export type HttpAppMessage = { type: 'ready'; port: number; pid: number };

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

const mode = process.env.BENCH_APP_MODE as HttpAppMode;
const options = {
  redisUrl: process.env.BENCH_REDIS_URL!,
  dbPath: ':memory:',
  queryDelayMs: Number(process.env.BENCH_QUERY_DELAY_MS ?? 50),
  namespace: process.env.BENCH_NAMESPACE,
};

// The sample app imports the library by its package name. Compiled into .tmp/bench, that name must
// resolve to the compiled sources beside it (http.bench.ts writes .tmp/bench/package.json for that),
// never to a stale dist/: both copies would load, and the app would measure the wrong one.
const resolved = import.meta.resolve('nestjs-redis-cache');
const expected = new URL('../../lib/index.js', import.meta.url).href;
if (resolved !== expected) {
  throw new Error(`nestjs-redis-cache resolves to ${resolved}, expected ${expected}`);
}

async function build(): Promise<INestApplication> {
  if (mode === 'cached') return createSampleApp({ ...options, logger: false });
  if (mode !== 'uncached') throw new Error(`BENCH_APP_MODE: cached or uncached, got ${mode}`);
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(resolveSampleAppConfig(options))] })
    .overrideProvider(UsersService)
    .useClass(UncachedUsersService)
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
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
});
const { port } = app.getHttpServer().address() as AddressInfo;
process.send?.({ type: 'ready', port, pid: process.pid } satisfies HttpAppMessage);
