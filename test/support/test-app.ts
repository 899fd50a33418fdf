import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import type { INestApplication, LoggerService, ModuleMetadata, Type } from '@nestjs/common';
import { Redis } from 'ioredis';
import { RedisCacheConfigError, RedisCacheModule, type RedisCacheModuleOptions } from 'nestjs-redis-cache';

/** The Redis the global setup started (or REDIS_URL). */
export function testRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run the tests through jest (its global setup starts Redis)');
  return url;
}

let counter = 0;
/** A namespace no other test file or test uses, so parallel suites share one Redis safely. */
export function uniqueNamespace(label: string): string {
  return `t-${label}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}

export interface TestAppOptions {
  providers?: ModuleMetadata['providers'];
  controllers?: Type<unknown>[];
  cache?: RedisCacheModuleOptions;
  /** Where the app logs (default: nowhere). */
  logger?: LoggerService;
}

/** A Nest application with the cache on the test Redis and a fresh namespace; call `app.close()`. */
export async function createTestApp({
  providers = [],
  controllers = [],
  cache = {},
  logger,
}: TestAppOptions): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisCacheModule.forRoot({ redis: testRedisUrl(), namespace: uniqueNamespace('app'), ...cache })],
    providers,
    controllers,
  }).compile();
  const app = moduleRef.createNestApplication({ logger: logger ?? false });
  await app.init();
  return app;
}

/** A plain client for inspecting what the cache wrote. */
export function rawRedis(url = testRedisUrl()): Redis {
  return new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
}

/** `app.init()` must reject with a RedisCacheConfigError; returns its message (and closes the app). */
export async function initError(app: INestApplication): Promise<string> {
  try {
    await app.init();
  } catch (err) {
    expect(err).toBeInstanceOf(RedisCacheConfigError);
    return (err as Error).message;
  } finally {
    await app.close();
  }
  throw new Error('app.init() resolved, expected a RedisCacheConfigError');
}
