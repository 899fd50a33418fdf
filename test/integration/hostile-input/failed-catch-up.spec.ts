// Lost state that must come back while the subscriber's connection stays up, so that no reconnect
// would bring it back:
// - the prefix markers' read on a new subscription. The instance reads them before it trusts the ones
//   in memory, and its in-process tier serves nothing until it has. A read that fails (a command timed
//   out, the command connection still in an outage) is tried again while the subscription lasts.
//   CLIENT PAUSE WRITE holds the read (a script that keeps the markers alive, so a write) while the
//   subscriber reconnects: SUBSCRIBE is not a write and goes through.
// - the SUBSCRIBE itself, refused (NOPERM) because the user's ACL rules changed while the application
//   ran: sent again, backing off, so the instance subscribes once the rules allow it.
// The test's own redis-server.
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { CacheService } from 'nestjs-redis-cache';
import { startLocalRedis, type LocalRedisServer } from '../../../tools/local-redis-server.mjs';
import { COMMAND_TIMEOUT_MS, createFaultApp, eventually } from '../../support/fault-helpers.js';
import { POST, Posts, subscribeCalls } from '../../support/subscriber-faults.js';
import { bookkeeping } from '../../support/redis-keys.js';
import { createTestApp, uniqueNamespace } from '../../support/test-app.js';

/** The Redis user of the ACL test, allowed everything until the test takes its channels away. */
const USER = 'catch-up';
const PASSWORD = 'catch-up-password';

/** Long enough for a reconnect and a marker read that times out; short of two unheard heartbeats. */
const PAUSE_MS = 700;

describe('what a new subscription needs is tried again while the connection stays up', () => {
  let server: LocalRedisServer;
  let admin: Redis;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    server = await startLocalRedis();
    admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
  });

  afterEach(async () => {
    await admin.call('CLIENT', 'UNPAUSE');
    await app?.close();
    app = undefined;
    await admin.call('ACL', 'DELUSER', USER);
  });

  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  /** The lease channel of the ACL test's namespace. */
  let leaseChannel: string | undefined;

  const subscribes = () => subscribeCalls(admin);
  /** L1 hits of `Posts.post` so far. */
  const l1Hits = (cache: CacheService) => cache.stats().byName[POST]?.l1Hits ?? 0;

  /** `id`, not read before, is loaded, read back from Redis (kept in L1), then served from L1. */
  async function expectKeptInL1(posts: Posts, cache: CacheService, id: number): Promise<void> {
    const loads = posts.loads;
    await posts.post(id);
    await posts.post(id);
    const before = l1Hits(cache);
    expect(await posts.post(id)).toEqual({ id, load: loads + 1 });
    expect(l1Hits(cache)).toBe(before + 1);
  }

  it('the in-process tier serves again once the markers can be read, with the subscription never lost again', async () => {
    app = await createTestApp({
      providers: [Posts],
      cache: {
        redis: server.url,
        namespace: uniqueNamespace('catch-up'),
        l1: { max: 100, ttl: '1m' },
        commandTimeout: COMMAND_TIMEOUT_MS,
      },
    });
    const cache = app.get(CacheService);
    const posts = app.get(Posts);
    await eventually('L1 serves', async () => cache.status().l1 === 'serving', 5_000);
    await expectKeptInL1(posts, cache, 1);

    // The subscriber connection drops while the server holds writes: the instance subscribes again at
    // once, and its marker read waits out commandTimeout.
    const subscribed = await subscribes();
    const pausedAt = Date.now();
    expect(await admin.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE')).toBe('OK');
    expect(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBe(1);
    await eventually('the instance subscribes again', async () => (await subscribes()) > subscribed, 5_000);
    const resubscribedAfterMs = Date.now() - pausedAt;
    // The claim needs the read to have met the pause: a machine too slow for that fails here, loudly.
    expect(resubscribedAfterMs).toBeLessThan(PAUSE_MS - COMMAND_TIMEOUT_MS - 100);
    expect(cache.status().l1).toBe('waiting');

    // Past the pause the server answers again; the subscription was never lost since, so only a
    // retried read brings L1 back (and the presence marker, written again, settles meanwhile).
    await eventually('L1 serves again', async () => cache.status().l1 === 'serving', 10_000);
    expect(await subscribes()).toBe(subscribed + 1);
    await expectKeptInL1(posts, cache, 2);
  }, 30_000);

  it('a SUBSCRIBE refused after an ACL change is sent again: the instance subscribes once the rules allow it', async () => {
    expect(await admin.call('ACL', 'SETUSER', USER, 'reset', 'on', `>${PASSWORD}`, '~*', '&*', '+@all')).toBe('OK');
    const fault = await createFaultApp(`redis://${USER}:${PASSWORD}@127.0.0.1:${server.port}`, {
      providers: [Posts],
      cache: { l1: { max: 100, ttl: '1m' } },
    });
    ({ app } = fault);
    const { cache, logs } = fault;
    leaseChannel = bookkeeping(fault.namespace).leaseChannel;
    const posts = app.get(Posts);
    await eventually('L1 serves', async () => cache.status().l1 === 'serving', 5_000);
    await admin.call('ACL', 'LOG', 'RESET');
    const logMark = logs.lines.length;

    // No channels any more: Redis closes the user's subscribed connection, and the subscriber's
    // SUBSCRIBE on its new one is refused. The instance behaves as unsubscribed (L1 serves nothing).
    expect(await admin.call('ACL', 'SETUSER', USER, 'resetchannels')).toBe('OK');
    await eventually('L1 stops serving', async () => cache.status().l1 === 'waiting', 5_000);
    // Asked again while refused (a second SUBSCRIBE about a second later), not once for good.
    await eventually('the SUBSCRIBE refused twice', async () => (await refusedSubscribes()) >= 2, 10_000);
    expect(cache.status().l1).toBe('waiting');
    // Said once, however often refused, naming what Redis said and what the instance does meanwhile.
    const refusals = () => logs.cacheLines('warn', logMark).filter((line) => line.includes('subscription was refused'));
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0]).toMatch(/NOPERM.*Least privilege.*lease waiters poll and the in-process tier serves nothing/);

    // The rules allow it again: the instance subscribes on the same connection, and L1 serves.
    const subscribed = await subscribes();
    expect(await admin.call('ACL', 'SETUSER', USER, 'allchannels')).toBe('OK');
    await eventually('L1 serves again', async () => cache.status().l1 === 'serving', 15_000);
    expect(await subscribes()).toBeGreaterThan(subscribed);
    expect(logs.cacheLines('log', logMark).filter((line) => line.includes('subscription again'))).toHaveLength(1);
    expect(refusals()).toHaveLength(1);
    await expectKeptInL1(posts, cache, 3);
  }, 40_000);

  /**
   * SUBSCRIBEs of USER that ACL LOG recorded as refused since its last reset: refusals of the lease
   * channel, the first one the subscriber names (the command connection's heartbeats are refused on
   * another).
   */
  async function refusedSubscribes(): Promise<number> {
    const entries = (await admin.call('ACL', 'LOG', '128')) as unknown[][];
    let count = 0;
    for (const entry of entries) {
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
      if (
        fields.get('username') === USER &&
        fields.get('reason') === 'channel' &&
        fields.get('object') === leaseChannel
      ) {
        count += Number(fields.get('count'));
      }
    }
    return count;
  }
});
