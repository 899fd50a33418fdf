import 'reflect-metadata';
import type { Redis } from 'ioredis';
import { freePort, startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';
import {
  adminClient,
  CALL_BOUND_MS,
  createFaultApp,
  eventually,
  FIND,
  outcomes,
  queues,
  range,
  timed,
  timedAll,
  timedSequence,
  waitForHit,
  type FaultApp,
} from '../support/fault-helpers.js';

// Redis killed (SIGKILL) mid-run, or not running when the app boots: every call still returns the
// source's result within commandTimeout, each failure is counted, the outage is logged once, and
// caching resumes by itself once a redis-server listens on the port again. Each test owns its server.

describe('fail open when Redis dies', () => {
  let server: LocalRedisServer | undefined;
  let fault: FaultApp | undefined;
  let raw: Redis | undefined;

  afterEach(async () => {
    await fault?.app.close();
    raw?.disconnect();
    await server?.stop();
    fault = undefined;
    raw = undefined;
    server = undefined;
  });

  it('serves the source while the server is killed, logs the outage once and caches again after a restart', async () => {
    server = await startLocalRedis();
    const { port } = server;
    fault = await createFaultApp(server.url);
    const { source, cache, logs } = fault;

    expect(await source.find(1)).toEqual({ id: 1, load: 1 });
    expect(await source.find(1)).toEqual({ id: 1, load: 1 });
    expect(outcomes(cache, FIND)).toMatchObject({ hits: 1, misses: 1, failed: 0, errors: 0 });
    const logMark = logs.lines.length;

    await server.kill();

    // 50 sequential calls, the first on a key that was cached: each goes to the source.
    const loadsBefore = source.loads;
    const sequential = await timedSequence(range(1, 50).map((id) => () => source.find(id)));
    expect(sequential.values).toEqual(range(1, 50).map((id, i) => ({ id, load: loadsBefore + i + 1 })));
    expect(sequential.maxActiveMs).toBeLessThan(CALL_BOUND_MS);

    // 200 concurrent calls on distinct keys: 200 loads, no call waits.
    const concurrent = await timedAll(range(1_000, 200).map((id) => () => source.find(id)));
    expect(concurrent.values.map((value) => value.id)).toEqual(range(1_000, 200));
    expect(new Set(concurrent.values.map((value) => value.load)).size).toBe(200);
    expect(concurrent.maxActiveMs).toBeLessThan(CALL_BOUND_MS);

    // 100 concurrent calls on one key share one load (single-flight) even while the cache is down.
    const loadsBeforeSameKey = source.loads;
    const sameKey = await timedAll(range(0, 100).map(() => () => source.find(5_000)));
    expect(new Set(sameKey.values.map((value) => value.load))).toEqual(new Set([loadsBeforeSameKey + 1]));
    expect(sameKey.maxActiveMs).toBeLessThan(CALL_BOUND_MS);
    expect(source.loads).toBe(loadsBefore + 50 + 200 + 1);

    // Every failed read is one error; the skipped write after it is not a second one. The 100
    // same-key calls were one read.
    const whileDown = outcomes(cache, FIND);
    expect(whileDown).toMatchObject({ hits: 1, misses: 1, errors: 50 + 200 + 1, failed: 50 + 200 + 100 });
    expect(cache.stats().errors).toBe(50 + 200 + 1);

    // ioredis's offline queue is off: nothing waits in it for a connection that is not there.
    expect(cache.client.status).not.toBe('ready');
    expect((cache.client.options as { enableOfflineQueue?: boolean }).enableOfflineQueue).toBe(false);
    expect(queues(cache.client).offline).toBe(0);

    // One warning for the whole outage, however many calls failed (and however many reconnects failed).
    expect(logs.outages(logMark)).toHaveLength(1);
    expect(logs.cacheLines('warn', logMark)).toHaveLength(1);
    expect(logs.recoveries(logMark)).toHaveLength(0);
    // The cache's own view, as a readiness probe reads it.
    expect(cache.status()).toMatchObject({ running: true, redis: 'down', subscribed: false });

    // The same port again: the client reconnects on its own and the next read is the one that recovers.
    server = await startLocalRedis({ port });
    await waitForHit(fault, 9_000);
    const loadsAfterRecovery = source.loads;
    for (let i = 0; i < 20; i++) expect(await source.find(9_000)).toEqual({ id: 9_000, load: loadsAfterRecovery });
    expect(source.loads).toBe(loadsAfterRecovery);

    raw = adminClient(server.url);
    expect(await raw.pttl(fault.itemKey(9_000))).toBeGreaterThan(55_000);

    // Calls made while reconnecting failed too, one error each; still one line per outage.
    const after = outcomes(cache, FIND);
    expect(after.errors).toBe(after.failed - 99);
    expect(logs.cacheLines('warn', logMark)).toHaveLength(1);
    expect(logs.recoveries(logMark)).toEqual([expect.stringMatching(/^Redis cache recovered after \d+\.\ds/)]);
    expect(cache.status()).toMatchObject({ running: true, redis: 'up' });
  });

  it('boots while Redis is down, serves the source, and starts caching once Redis comes up', async () => {
    const port = await freePort();
    fault = await createFaultApp(`redis://127.0.0.1:${port}`);
    const { source, cache, logs } = fault;
    // The app does not wait for a server that refuses connections.
    expect(fault.initMs).toBeLessThan(1_000);

    const calls = await timedSequence(range(1, 50).map(() => () => source.find(1)));
    expect(calls.values.map((value) => value.load)).toEqual(range(1, 50));
    expect(calls.maxActiveMs).toBeLessThan(CALL_BOUND_MS);
    expect(outcomes(cache, FIND)).toMatchObject({ hits: 0, misses: 0, failed: 50, errors: 50 });
    // The refused connection at boot and the 50 failed calls are one outage: one warning.
    expect(logs.outages()).toHaveLength(1);
    expect(logs.cacheLines('warn')).toHaveLength(1);

    server = await startLocalRedis({ port });
    await waitForHit(fault, 1);
    const loads = source.loads;
    expect(await source.find(1)).toEqual({ id: 1, load: loads });
    expect(source.loads).toBe(loads);
    expect(logs.cacheLines('warn')).toHaveLength(1);
    expect(logs.recoveries()).toHaveLength(1);
  });

  it('keeps CacheService from throwing while Redis is down', async () => {
    server = await startLocalRedis();
    const { port } = server;
    fault = await createFaultApp(server.url);
    const { cache, logs } = fault;
    await cache.set('kept', { a: 1 });
    expect(await cache.get('kept')).toEqual({ a: 1 });

    await server.kill();
    const errorsBefore = cache.stats().errors;

    const get = await timed(() => cache.get('kept'));
    expect(get.value).toBeUndefined();
    const set = await timed(() => cache.set('other', 1));
    expect(set.value).toBeUndefined();
    const del = await timed(() => cache.del('kept', 'other'));
    expect(del.value).toBe(0);
    const getOrSet = await timed(() => cache.getOrSet('computed', async () => 'from loader'));
    expect(getOrSet.value).toBe('from loader');
    const clear = await timed(() => cache.clear());
    expect(clear.value).toBe(0);
    for (const call of [get, set, del, getOrSet, clear]) expect(call.activeMs).toBeLessThan(CALL_BOUND_MS);

    // 100 more of each at once: none throws, none waits.
    const burst = await timedAll(
      range(0, 100).flatMap((i) => [
        () => cache.get(`k${i}`),
        () => cache.set(`k${i}`, i),
        () => cache.del(`k${i}`),
        () => cache.getOrSet(`g${i}`, async () => i),
        () => cache.clear(`k${i}`),
      ]),
    );
    expect(burst.maxActiveMs).toBeLessThan(CALL_BOUND_MS);
    expect(burst.values.filter((_, i) => i % 5 === 3)).toEqual(range(0, 100));

    // get, set, del, getOrSet (its read) and clear: one error each.
    expect(cache.stats().errors - errorsBefore).toBe(5 + 5 * 100);
    expect(logs.cacheLines('warn')).toHaveLength(1);

    server = await startLocalRedis({ port });
    await eventually('getOrSet is served from the cache', async () => {
      await cache.getOrSet('computed', async () => 'from loader');
      return (cache.stats().byName['CacheService.getOrSet']?.hits ?? 0) > 0;
    });
    await cache.set('kept', { a: 2 });
    expect(await cache.get('kept')).toEqual({ a: 2 });
    expect(logs.recoveries()).toHaveLength(1);
  });
});
