// RedisCacheHealthIndicator (nestjs-redis-cache/health) in a Nest app with TerminusModule, called over
// HTTP on Express and on Fastify: up with a latency while Redis answers; while it is paused (SIGSTOP)
// or killed, `up` with `state: 'degraded'` within the check's timeout (the app still serves,
// uncached), or `down` (503) where the app marks the cache required. Each Redis here is this file's
// own (a redis-server, or a cluster in the cluster project): pausing the shared one would stall the
// suites beside it.
import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Controller, Get, Param, Query, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import type { Cluster, Redis } from 'ioredis';
import request from 'supertest';
import {
  CacheService,
  RedisCacheConfigError,
  RedisCacheModule,
  type RedisCacheModuleOptions,
} from 'nestjs-redis-cache';
import { RedisCacheHealthIndicator } from 'nestjs-redis-cache/health';
import { cacheTokens } from '../../lib/cache-names.js';
import { freePort } from '../../tools/local-redis-server.mjs';
import { waitFor } from '../support/load-helpers.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis, type OwnRedis } from '../support/own-redis.js';
import { isCluster, primariesOf, type TestRedisConnection } from '../support/redis-topology.js';
import { testRedisConnection, uniqueNamespace } from '../support/test-app.js';

/** The health checks' timeout: small, so a paused Redis costs the test little. */
const TIMEOUT_MS = 300;
/** How much later than TIMEOUT_MS a check may answer on this loaded 2-core machine. */
const SLACK_MS = 1_000;

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly cache: RedisCacheHealthIndicator,
  ) {}

  // The default cache, without a `cache` option; the named ones with `timeout` as a duration string.
  @Get()
  @HealthCheck()
  check(@Query('required') required?: string) {
    return this.health.check([
      () => this.cache.isHealthy('cache', { required: required === 'true', timeout: TIMEOUT_MS }),
    ]);
  }

  @Get(':cache')
  @HealthCheck()
  checkNamed(@Param('cache') cache: string, @Query('required') required?: string) {
    return this.health.check([
      () => this.cache.isHealthy('cache', { cache, required: required === 'true', timeout: `${TIMEOUT_MS}ms` }),
    ]);
  }
}

type Platform = 'express' | 'fastify';

/** What the details say of an instance subscribed, without L1 and with nothing held back. */
const SUBSCRIBED = { subscribed: true, l1: 'off', pendingInvalidations: 0 } as const;
/** The same without a live subscription (Redis gone, or the cache not started). */
const UNSUBSCRIBED = { subscribed: false, l1: 'off', pendingInvalidations: 0 } as const;

/** Resolves once every cache of `app` is subscribed (a moment after `app.init()`). */
async function subscribed(app: INestApplication, ...names: string[]): Promise<void> {
  for (const name of names) {
    const cache = app.get<CacheService>(cacheTokens(name).service, { strict: false });
    await waitFor(`cache '${name}' to subscribe`, () => cache.status().subscribed, 10_000);
  }
}

/** An app with the health controller and one registration per `caches` entry; call `app.close()`. */
async function bootHealthApp(
  platform: Platform,
  caches: RedisCacheModuleOptions[],
): Promise<{ app: INestApplication; get: (path: string) => request.Test }> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      TerminusModule.forRoot({ logger: false }),
      ...caches.map((cache) => RedisCacheModule.forRoot({ namespace: uniqueNamespace('health'), ...cache })),
    ],
    providers: [RedisCacheHealthIndicator],
    controllers: [HealthController],
  }).compile();
  const app = moduleRef.createNestApplication(platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(), {
    logger: false,
  });
  await app.init();
  if (platform === 'fastify') await app.getHttpAdapter().getInstance().ready();
  return { app, get: (path) => request(app.getHttpServer()).get(path) };
}

/** The process id of every server of `own` (each primary of a cluster), from INFO. */
async function serverPids(own: OwnRedis): Promise<number[]> {
  const client = own.client() as Redis | Cluster;
  try {
    const servers = isCluster(client) ? await primariesOf(client) : [client];
    const infos = await Promise.all(servers.map((server) => server.info('server')));
    return infos.map((info) => Number(/^process_id:(\d+)/m.exec(info)?.[1]));
  } finally {
    client.disconnect();
  }
}

/** `connection` logging in as `username`. */
function asUser(connection: TestRedisConnection, username: string, password: string): RedisCacheModuleOptions['redis'] {
  if (typeof connection !== 'string') {
    return { cluster: { nodes: connection.cluster.nodes, options: { redisOptions: { username, password } } } };
  }
  const url = new URL(connection);
  url.username = username;
  url.password = password;
  return url.toString();
}

/** Creates (or resets) user `name` with password `pw-s3cret` and `rules` on every server of `own`. */
async function setUser(own: OwnRedis, name: string, rules: string[]): Promise<void> {
  const admin = own.client() as Redis | Cluster;
  try {
    const servers = isCluster(admin) ? await primariesOf(admin) : [admin];
    await Promise.all(
      servers.map((server) => server.call('ACL', 'SETUSER', name, 'reset', 'on', '>pw-s3cret', ...rules)),
    );
  } finally {
    admin.disconnect();
  }
}

/**
 * Whether ACL LOG (of any primary `admin` reaches) holds a SUBSCRIBE or SSUBSCRIBE refused to
 * `username` for a channel (not, say, a heartbeat's PUBLISH).
 */
async function refusedChannel(admin: Redis | Cluster, username: string): Promise<boolean> {
  const servers = isCluster(admin) ? await primariesOf(admin) : [admin];
  for (const server of servers) {
    const entries = (await server.call('ACL', 'LOG')) as unknown[][];
    for (const entry of entries) {
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
      const command = /\bcmd=(\S+)/.exec(String(fields.get('client-info')))?.[1];
      const subscribing = command === 'subscribe' || command === 'ssubscribe';
      if (fields.get('username') === username && fields.get('reason') === 'channel' && subscribing) return true;
    }
  }
  return false;
}

/** Empties ACL LOG on every server of `own`. */
async function resetAclLog(own: OwnRedis): Promise<void> {
  const admin = own.client() as Redis | Cluster;
  try {
    const servers = isCluster(admin) ? await primariesOf(admin) : [admin];
    await Promise.all(servers.map((server) => server.call('ACL', 'LOG', 'RESET')));
  } finally {
    admin.disconnect();
  }
}

/** Runs `work` while every server of `own` is stopped (SIGSTOP), and resumes them whatever happens. */
async function whilePaused<T>(own: OwnRedis, work: () => Promise<T>): Promise<T> {
  const pids = await serverPids(own);
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  try {
    return await work();
  } finally {
    for (const pid of pids) process.kill(pid, 'SIGCONT');
  }
}

describe('RedisCacheHealthIndicator', () => {
  let own: OwnRedis;

  beforeAll(async () => {
    own = await startOwnRedis();
  }, OWN_REDIS_TEST_TIMEOUT_MS);
  afterAll(async () => {
    await own?.stop();
  });

  describe.each<Platform>(['express', 'fastify'])('on %s', (platform) => {
    let app: INestApplication;
    let get: (path: string) => request.Test;

    beforeAll(async () => {
      ({ app, get } = await bootHealthApp(platform, [
        { redis: own.connection },
        { name: 'sessions', redis: testRedisConnection() },
      ]));
    }, OWN_REDIS_TEST_TIMEOUT_MS);
    afterAll(async () => {
      await app?.close();
    });

    it(
      'is up, with the latency of a PING and the instance subscribed, while Redis answers',
      async () => {
        await subscribed(app, 'default', 'sessions');
        const response = await get('/health').expect(200);
        const up = { status: 'up', state: 'up', cache: 'default', latencyMs: expect.any(Number), ...SUBSCRIBED };
        expect(response.body).toEqual({ status: 'ok', info: { cache: up }, error: {}, details: { cache: up } });
        const { latencyMs } = response.body.details.cache;
        expect(latencyMs).toBeGreaterThan(0);
        expect(latencyMs).toBeLessThan(TIMEOUT_MS);
        // `required` changes nothing while Redis answers.
        expect((await get('/health?required=true').expect(200)).body.details.cache).toMatchObject({ state: 'up' });
      },
      OWN_REDIS_TEST_TIMEOUT_MS,
    );

    it('checks a named cache on its own client', async () => {
      await subscribed(app, 'sessions');
      const response = await get('/health/sessions').expect(200);
      expect(response.body.details).toEqual({
        cache: { status: 'up', state: 'up', cache: 'sessions', latencyMs: expect.any(Number), ...SUBSCRIBED },
      });
    });

    it('clears the timer of its timeout once Redis has answered', async () => {
      const armed = jest.spyOn(globalThis, 'setTimeout');
      const cleared = jest.spyOn(globalThis, 'clearTimeout');
      try {
        const result = await app.get(RedisCacheHealthIndicator).isHealthy('cache', { timeout: 60_000 });
        expect(result.cache).toMatchObject({ status: 'up', state: 'up' });
        const timers = armed.mock.results.filter((_, i) => armed.mock.calls[i]![1] === 60_000);
        expect(timers).toHaveLength(1);
        expect(cleared).toHaveBeenCalledWith(timers[0]!.value);
      } finally {
        armed.mockRestore();
        cleared.mockRestore();
      }
    });

    it('answers 500 with a RedisCacheConfigError for a cache no registration has, naming the registered ones', async () => {
      const message =
        "RedisCacheHealthIndicator.isHealthy: no cache is registered as 'nope' (the app registers 'default', " +
        "'sessions'): pass a registered name as `cache`, or register it with RedisCacheModule.forRoot({ name: 'nope' })";
      const health = app.get(HealthCheckService);
      const indicator = app.get(RedisCacheHealthIndicator);
      const checked = health.check([() => indicator.isHealthy('cache', { cache: 'nope' })]);
      await expect(checked).rejects.toThrow(RedisCacheConfigError);
      await expect(checked).rejects.toThrow(message);
      await get('/health/nope').expect(500);
    });

    it('is degraded within the timeout while Redis is paused, down (503) where it is required, and up once it resumes', async () => {
      await whilePaused(own, async () => {
        let started = performance.now();
        const degraded = await get('/health').expect(200);
        let elapsed = performance.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
        expect(elapsed).toBeLessThan(TIMEOUT_MS + SLACK_MS);
        expect(degraded.body).toEqual({
          status: 'ok',
          info: {
            cache: {
              status: 'up',
              state: 'degraded',
              cache: 'default',
              message: `Redis did not answer PING within ${TIMEOUT_MS} ms; the app serves without the cache`,
              // The subscriber finds a paused server by its heartbeat, later than this check.
              subscribed: expect.any(Boolean),
              l1: 'off',
              pendingInvalidations: 0,
            },
          },
          error: {},
          details: { cache: degraded.body.info.cache },
        });

        started = performance.now();
        const down = await get('/health?required=true').expect(503);
        elapsed = performance.now() - started;
        expect(elapsed).toBeLessThan(TIMEOUT_MS + SLACK_MS);
        const details = {
          status: 'down',
          state: 'down',
          cache: 'default',
          message: `Redis did not answer PING within ${TIMEOUT_MS} ms; the cache is required`,
          subscribed: expect.any(Boolean),
          l1: 'off',
          pendingInvalidations: 0,
        };
        expect(down.body).toEqual({
          status: 'error',
          info: {},
          error: { cache: details },
          details: { cache: details },
        });

        // The other cache has its own Redis and client.
        expect((await get('/health/sessions').expect(200)).body.details.cache).toMatchObject({ state: 'up' });
      });
      expect((await get('/health').expect(200)).body.details.cache).toMatchObject({ state: 'up' });
    });
  });

  describe('when Redis answers PING with an error', () => {
    let app: INestApplication;
    let get: (path: string) => request.Test;

    beforeAll(async () => {
      // A user that may run everything but PING: Redis answers the check, with NOPERM.
      await setUser(own, 'no-ping', ['~*', '&*', '+@all', '-ping']);
      ({ app, get } = await bootHealthApp('express', [{ redis: asUser(own.connection, 'no-ping', 'pw-s3cret') }]));
    }, OWN_REDIS_TEST_TIMEOUT_MS);
    afterAll(async () => {
      await app?.close();
    });

    it(
      'is degraded with the latency of the reply and what Redis said, without the password',
      async () => {
        await subscribed(app, 'default');
        const response = await get('/health').expect(200);
        expect(response.body.details.cache).toEqual({
          status: 'up',
          state: 'degraded',
          cache: 'default',
          latencyMs: expect.any(Number),
          message: expect.stringMatching(/^PING failed: NOPERM .*'ping' command; the app serves without the cache$/),
          ...SUBSCRIBED,
        });
        expect(response.text).not.toContain('pw-s3cret');
        expect((await get('/health?required=true').expect(503)).body.error.cache).toMatchObject({ state: 'down' });
      },
      OWN_REDIS_TEST_TIMEOUT_MS,
    );
  });

  describe('when Redis refuses the subscription', () => {
    let app: INestApplication;
    let get: (path: string) => request.Test;

    beforeAll(async () => {
      // A user that may do everything; the test takes its channels away once the app runs (the
      // module refuses to start as a user that has none).
      await setUser(own, 'loses-channels', ['~*', '&*', '+@all']);
      ({ app, get } = await bootHealthApp('express', [
        { redis: asUser(own.connection, 'loses-channels', 'pw-s3cret') },
      ]));
    }, OWN_REDIS_TEST_TIMEOUT_MS);
    afterAll(async () => {
      await app?.close();
    });

    it(
      'is up, and says the instance is not subscribed',
      async () => {
        await subscribed(app, 'default');
        // Redis closes the user's subscribed connection, and refuses its SUBSCRIBE (SSUBSCRIBE on a
        // Redis 7 Cluster) on the next one: the instance stays unsubscribed while PING answers.
        await resetAclLog(own);
        await setUser(own, 'loses-channels', ['~*', 'resetchannels', '+@all']);
        const cache = app.get(CacheService);
        await waitFor('the subscription to be lost', () => !cache.status().subscribed, 10_000);
        const admin = own.client() as Redis | Cluster;
        try {
          await waitFor('a refused subscription in ACL LOG', () => refusedChannel(admin, 'loses-channels'), 10_000);
        } finally {
          admin.disconnect();
        }
        expect(cache.status().subscribed).toBe(false);
        const response = await get('/health').expect(200);
        expect(response.body.details.cache).toEqual({
          status: 'up',
          state: 'up',
          cache: 'default',
          latencyMs: expect.any(Number),
          ...UNSUBSCRIBED,
        });
      },
      OWN_REDIS_TEST_TIMEOUT_MS,
    );
  });

  describe('when Redis is gone', () => {
    let gone: OwnRedis;
    let app: INestApplication;
    let get: (path: string) => request.Test;

    beforeAll(async () => {
      gone = await startOwnRedis();
      // Nothing listens on that port: the app starts without that cache (after RedisCacheModule's 2 s wait).
      const refusing = `redis://app:s3cret@127.0.0.1:${await freePort()}`;
      ({ app, get } = await bootHealthApp('express', [
        { redis: gone.connection },
        { name: 'refusing', redis: refusing },
      ]));
    }, OWN_REDIS_TEST_TIMEOUT_MS);
    afterAll(async () => {
      await app?.close();
      await gone?.stop();
    });

    it(
      'is degraded when killed, and down (503) where it is required',
      async () => {
        await gone.kill();
        // Until the client has seen its connections close, a PING fails on the closed socket instead. A
        // Cluster client notices all six nodes gone later than one server's client does.
        const cache = app.get(CacheService);
        await waitFor('the client to see Redis gone', () => cache.client.status !== 'ready', 10_000);
        await waitFor('the subscription to be lost', () => !cache.status().subscribed, 10_000);

        const notConnected = /^Redis is not connected \(client status '(connecting|connect|reconnecting|close)'\)/;
        const degraded = await get('/health').expect(200);
        expect(degraded.body.status).toBe('ok');
        expect(degraded.body.details.cache).toEqual({
          status: 'up',
          state: 'degraded',
          cache: 'default',
          message: expect.stringMatching(notConnected),
          ...UNSUBSCRIBED,
        });
        expect(degraded.body.details.cache.message).toMatch(/; the app serves without the cache$/);

        const down = await get('/health?required=true').expect(503);
        expect(down.body.status).toBe('error');
        expect(down.body.error.cache).toEqual({
          status: 'down',
          state: 'down',
          cache: 'default',
          message: expect.stringMatching(notConnected),
          ...UNSUBSCRIBED,
        });
        expect(down.body.error.cache.message).toMatch(/; the cache is required$/);
      },
      OWN_REDIS_TEST_TIMEOUT_MS,
    );

    it('is degraded when Redis refuses connections, and says so without the password', async () => {
      const response = await get('/health/refusing').expect(200);
      expect(response.body.details.cache).toEqual({
        status: 'up',
        state: 'degraded',
        cache: 'refusing',
        message: expect.stringMatching(
          /^Redis is not connected \(client status '(connecting|reconnecting)'\); the app/,
        ),
        ...UNSUBSCRIBED,
      });
      expect(response.text).not.toContain('s3cret');
      await get('/health/refusing?required=true').expect(503);
    });
  });

  describe('outside a running app', () => {
    /** The indicator of a compiled module whose lifecycle has not run (no `app.init()`): no cache started. */
    async function compiled(): Promise<{ indicator: RedisCacheHealthIndicator; close: () => Promise<void> }> {
      const nowhere = `redis://127.0.0.1:${await freePort()}`;
      const moduleRef = await Test.createTestingModule({
        imports: [
          TerminusModule.forRoot({ logger: false }),
          RedisCacheModule.forRoot({ redis: nowhere }),
          RedisCacheModule.forRoot({ name: 'sessions', redis: nowhere }),
        ],
        providers: [RedisCacheHealthIndicator],
      }).compile();
      return { indicator: moduleRef.get(RedisCacheHealthIndicator), close: () => moduleRef.close() };
    }

    it('reports a cache that is not started as degraded, or down where it is required', async () => {
      const { indicator, close } = await compiled();
      try {
        const reason = 'The cache is not started: RedisCacheModule starts it during app.init()';
        expect(await indicator.isHealthy('cache')).toEqual({
          cache: {
            status: 'up',
            state: 'degraded',
            cache: 'default',
            message: `${reason}; the app serves without the cache`,
            ...UNSUBSCRIBED,
          },
        });
        expect(await indicator.isHealthy('sessions', { cache: 'sessions', required: true })).toEqual({
          sessions: {
            status: 'down',
            state: 'down',
            cache: 'sessions',
            message: `${reason}; the cache is required`,
            ...UNSUBSCRIBED,
          },
        });
      } finally {
        await close();
      }
    });

    it('throws a RedisCacheConfigError for a malformed cache name or timeout', async () => {
      const { indicator, close } = await compiled();
      try {
        await expect(indicator.isHealthy('cache', { cache: 'no spaces' })).rejects.toThrow(
          new RedisCacheConfigError(
            'RedisCacheHealthIndicator.isHealthy: the cache name "no spaces" is not a name: use 1 to 64 of A-Z a-z 0-9 _ . -',
          ),
        );
        for (const timeout of [0, -1, Number.NaN, 2 ** 31, '1 minute']) {
          await expect(indicator.isHealthy('cache', { timeout: timeout as number })).rejects.toThrow(
            `RedisCacheHealthIndicator.isHealthy: timeout ${JSON.stringify(timeout)} is not a duration: give ` +
              "milliseconds (a positive number up to 2147483647) or a duration with a unit ('500ms', '2s')",
          );
        }
      } finally {
        await close();
      }
    });

    it('names no registered cache when the app has none', async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [TerminusModule.forRoot({ logger: false })],
        providers: [RedisCacheHealthIndicator],
      }).compile();
      try {
        await expect(moduleRef.get(RedisCacheHealthIndicator).isHealthy('cache')).rejects.toThrow(
          "RedisCacheHealthIndicator.isHealthy: no cache is registered as 'default' (the app registers none): pass a registered " +
            'name as `cache`, or register it with RedisCacheModule.forRoot()',
        );
      } finally {
        await moduleRef.close();
      }
    });
  });
});
