import type { INestApplication, NestApplicationOptions } from '@nestjs/common';
import { NestFactory, type AbstractHttpAdapter } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { resolveSampleAppConfig, type RedisClusterNode } from './config/sample-app-config.js';

export interface CreateSampleAppOptions {
  /** Redis for the cache, e.g. `redis://127.0.0.1:6379`. */
  redisUrl?: string;
  /** Instead of `redisUrl`: seed nodes of a Redis Cluster for the cache. */
  redisClusterNodes?: readonly RedisClusterNode[];
  /** SQLite file, created and seeded if missing; `:memory:` for a throwaway one. Default `./sample-app.db`. */
  dbPath?: string;
  /** Milliseconds every read query waits, so cache hits are visibly faster. Default 50. */
  queryDelayMs?: number;
  /** Prefix of the app's Redis keys. Default `sample-app`; tests use a unique one per file. */
  namespace?: string;
  /**
   * When set, `/admin/*` requires the header `x-admin-token`. Required unless `nodeEnv` is development
   * (unset, `development` or `test`): without it the app refuses to be created.
   */
  adminToken?: string;
  /** The NODE_ENV to judge `adminToken` by. Default `process.env.NODE_ENV`. */
  nodeEnv?: string;
  /** Nest's logger option: a LoggerService, the levels to print, or false for silence. */
  logger?: NestApplicationOptions['logger'];
  /**
   * The HTTP platform, e.g. `new FastifyAdapter()` from `@nestjs/platform-fastify`. Default Express.
   * Taken as an instance so the sample app itself never imports a platform it does not run on.
   */
  httpAdapter?: AbstractHttpAdapter;
}

/**
 * Builds the sample app, initialised but not listening. main.ts and the e2e tests both start
 * the app through here, so the tests exercise exactly what users run.
 *
 * @example
 * const app = await createSampleApp({ redisUrl: 'redis://127.0.0.1:6379' });
 * await app.listen(3000);
 */
export async function createSampleApp(options: CreateSampleAppOptions): Promise<INestApplication> {
  const config = resolveSampleAppConfig(options);
  // abortOnError: false — a bootstrap failure (Redis options, a bad TTL profile) rejects here
  // instead of killing the process, so callers can report it and clean up.
  const appOptions: NestApplicationOptions = { logger: options.logger, abortOnError: false };
  const app = options.httpAdapter
    ? await NestFactory.create(AppModule.forRoot(config), options.httpAdapter, appOptions)
    : await NestFactory.create(AppModule.forRoot(config), appOptions);
  try {
    await app.init();
  } catch (error) {
    // Release whatever did start (the Redis connection, the database) before reporting.
    await app.close().catch(() => undefined);
    throw error;
  }
  return app;
}
