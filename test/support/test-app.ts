import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Test } from '@nestjs/testing';
import type { INestApplication, LoggerService, ModuleMetadata, Type } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { RedisCacheConfigError, RedisCacheModule, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { testClusterNodes, testRedisConnection, testTopology } from './redis-topology.js';
import { aclUserOf, createAclUser, refusedTo } from './acl-user.js';

export {
  failsOnCluster,
  newTestClient,
  standaloneOnly,
  testClusterNodes,
  testRedisConnection,
  testTopology,
  type RedisTopology,
  type TestRedisConnection,
} from './redis-topology.js';

/**
 * The standalone Redis the global setup started (or REDIS_URL). In the cluster project it throws:
 * a spec there that connects to the standalone server would pass without testing the cluster. Use
 * `testRedisConnection()` (module option) or `rawRedis()` (inspection) to follow the project's topology.
 */
export function testRedisUrl(): string {
  if (testTopology() === 'cluster') {
    throw new Error(
      'testRedisUrl() in the integration-cluster project: use testRedisConnection() or rawRedis(), ' +
        'or list the spec as standalone-only in jest.config.mjs',
    );
  }
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

/**
 * A Nest application with the cache on the test Redis (the cluster in the cluster project; `cache.redis`
 * overrides it) and a fresh namespace; call `app.close()`.
 */
export async function createTestApp({
  providers = [],
  controllers = [],
  cache = {},
  logger,
}: TestAppOptions): Promise<INestApplication> {
  const namespace = cache.namespace ?? uniqueNamespace('app');
  // The integration-acl project: the app logs in as a user holding only what the README grants it.
  const aclUrl = process.env.TEST_REDIS_ACL && !cache.redis ? await aclUserUrl(namespace) : undefined;
  const moduleRef = await Test.createTestingModule({
    // commandTimeout: 1 s unless the spec says (the module's default is 250 ms). On this 2-core machine a
    // long run stalls a command past 250 ms now and then (a GC pause of the jest worker, six cluster
    // nodes busy): the cache then rightly fails open, and a spec expecting a hit sees a miss. Specs about
    // slow commands set their own.
    imports: [
      RedisCacheModule.forRoot({
        redis: aclUrl ?? testRedisConnection(),
        commandTimeout: 1_000,
        // The startup advisor's INFO, SCANs and PTTLs would land among what specs count on the server
        // (MONITOR, commandstats); test/integration/audit.spec.ts tests it, on apps that turn it on.
        startupAdvisor: false,
        ...cache,
        namespace,
      }),
    ],
    providers,
    controllers,
  }).compile();
  const app = moduleRef.createNestApplication({ logger: logger ?? false });
  if (aclUrl) {
    // The user goes with the app (acl.setup.ts deletes those a failed test left), and the app fails
    // its test if Redis refused it a command: a cache that fails open would pass without one.
    const close = app.close.bind(app);
    app.close = async () => {
      await close();
      const user = aclUserOf(aclUrl);
      const refused = await withAdmin(async (admin) => {
        await admin.call('ACL', 'DELUSER', user);
        return refusedTo(admin, user);
      });
      if (refused.length > 0) throw new Error(`Redis refused the ACL user: ${refused.join(', ')} (ACL LOG)`);
    };
  }
  await app.init();
  return app;
}

/** A fresh user of the test Redis holding exactly `aclRulesFor(namespace)`; the URL that logs in as it. */
async function aclUserUrl(namespace: string): Promise<string> {
  if (testTopology() === 'cluster') throw new Error('TEST_REDIS_ACL is for the standalone test Redis');
  return withAdmin((admin) => createAclUser(admin, namespace, randomBytes(12).toString('hex')));
}

/** Runs `work` with a client of the test Redis as its default (admin) user. */
async function withAdmin<T>(work: (admin: Redis) => Promise<T>): Promise<T> {
  const admin = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
  try {
    return await work(admin);
  } finally {
    admin.disconnect();
  }
}

/**
 * A plain client for inspecting what the cache wrote: of `url`, else of the test Redis. In the cluster
 * project (and without `url`) it is an ioredis `Cluster`, typed `Redis` so specs written for one
 * server keep compiling: the commands they use on one key (GET, SET, PTTL, EXISTS, EVAL...) behave the
 * same. What reads one node (SCAN, INFO, MONITOR, CLIENT) or spans slots (multi-key DEL, a pipeline)
 * goes through helpers that handle both (`scanKeys`, `setMany`, `delEach`, `watchCommands`) or checks
 * `isCluster`.
 */
export function rawRedis(url?: string): Redis {
  if (url !== undefined || testTopology() === 'standalone') {
    return new Redis(url ?? testRedisUrl(), { lazyConnect: false, maxRetriesPerRequest: 1 });
  }
  return new Cluster(testClusterNodes(), { redisOptions: { maxRetriesPerRequest: 1 } }) as unknown as Redis;
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
