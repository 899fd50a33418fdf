// Lost state that must come back: a subscription regained while Redis does not answer the command
// connection. On every (re)subscription the instance reads the prefix markers before it trusts the
// ones in memory, and its in-process tier serves nothing until it has. When that read fails (a
// command timed out, the connection still in an outage), nothing else would ever read them for the
// subscription, which stays up: L1 would serve nothing until the next reconnect, however healthy
// Redis is again. The read is tried again for as long as the subscription lasts.
//
// CLIENT PAUSE WRITE holds the marker read (a script that keeps the markers alive, so a write) while
// the subscriber reconnects: SUBSCRIBE is not a write and goes through. The test's own redis-server.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { startLocalRedis, type LocalRedisServer } from '../../../tools/local-redis-server.mjs';
import { COMMAND_TIMEOUT_MS, eventually } from '../../support/fault-helpers.js';
import { createTestApp, uniqueNamespace } from '../../support/test-app.js';

/** Long enough for a reconnect and a marker read that times out; short of two unheard heartbeats. */
const PAUSE_MS = 700;

@Injectable()
class Posts {
  loads = 0;

  @Cacheable({ key: 'post:{0}', ttl: '1h' })
  async post(id: number): Promise<{ id: number; load: number }> {
    return { id, load: ++this.loads };
  }
}

describe('a marker read that fails on a new subscription is tried again', () => {
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
  });

  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  /** SUBSCRIBE commands the server has run, all clients together. */
  async function subscribes(): Promise<number> {
    const info = await admin.info('commandstats');
    return Number(/^cmdstat_subscribe:calls=(\d+)/m.exec(info)?.[1] ?? 0);
  }

  /** L1 hits of `Posts.post` so far. */
  const l1Hits = (cache: CacheService) => cache.stats().byName['Posts.post']?.l1Hits ?? 0;

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
    // Loaded, read back from Redis (kept in L1), then served from L1.
    await posts.post(1);
    await posts.post(1);
    const hits = l1Hits(cache);
    expect(await posts.post(1)).toEqual({ id: 1, load: 1 });
    expect(l1Hits(cache)).toBe(hits + 1);

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
    const loads = posts.loads;
    await posts.post(2);
    await posts.post(2);
    const before = l1Hits(cache);
    expect(await posts.post(2)).toEqual({ id: 2, load: loads + 1 });
    expect(l1Hits(cache)).toBe(before + 1);
  }, 30_000);
});
