import 'reflect-metadata';
import type { Redis } from 'ioredis';
import { startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';
import {
  adminClient,
  CALL_BOUND_MS,
  createFaultApp,
  FIND,
  outcomes,
  queues,
  range,
  timedAll,
  timedSequence,
  waitForHit,
  waitUntilUnresponsive,
  type FaultApp,
} from '../support/fault-helpers.js';

// Redis connected but not answering for longer than commandTimeout (CLIENT PAUSE, DEBUG SLEEP):
// calls are abandoned after commandTimeout and go to the source; once one probe has timed out the
// others don't wait at all, and no command piles up behind the hung connection.

/** Per test: an outage of a few seconds, then the wait for recovery. */
const TEST_TIMEOUT_MS = 20_000;

describe('fail open when Redis stops answering', () => {
  let server: LocalRedisServer | undefined;
  let fault: FaultApp | undefined;
  let admin: Redis | undefined;
  let probe: Redis | undefined;

  afterEach(async () => {
    // Clients before the server: ioredis's disconnect() on a socket the server already closed leaves a 2 s timer behind.
    await fault?.app.close();
    admin?.disconnect();
    probe?.disconnect();
    await server?.stop();
    server = fault = admin = probe = undefined;
  });

  /**
   * Runs the calls of one outage on a server that stays unresponsive until `blockedUntil`, checks
   * each returned the source's result within the bound, and returns how many cache reads failed.
   */
  async function callThroughOutage(
    app: FaultApp,
    blockedUntil: number,
    { concurrent, sequential }: { concurrent: number; sequential: number },
  ): Promise<number> {
    const { source, cache } = app;
    const loadsBefore = source.loads;

    // The first burst: every call sends its read and waits out commandTimeout. 50 calls on one key share one read.
    const burst = await timedAll(
      [...range(1_000, concurrent), ...range(0, 50).map(() => 5_000)].map((id) => () => source.find(id)),
    );
    expect(burst.values.map((value) => value.id)).toEqual([
      ...range(1_000, concurrent),
      ...range(0, 50).map(() => 5_000),
    ]);
    expect(new Set(burst.values.map((value) => value.load)).size).toBe(concurrent + 1);
    expect(burst.maxActiveMs).toBeLessThan(CALL_BOUND_MS);

    // One after another, the first on the key cached before the outage: each is a probe that times out.
    const probes = await timedSequence(range(1, sequential).map((id) => () => source.find(id)));
    expect(probes.values).toEqual(
      range(1, sequential).map((id, i) => ({ id, load: loadsBefore + concurrent + 1 + i + 1 })),
    );
    expect(probes.maxActiveMs).toBeLessThan(CALL_BOUND_MS);

    // The outage is known now: 200 more calls at once send one probe between them and return at once.
    const sentBefore = queues(cache.client).command;
    const known = await timedAll(range(2_000, 200).map((id) => () => source.find(id)));
    expect(known.values.map((value) => value.id)).toEqual(range(2_000, 200));
    expect(known.maxActiveMs).toBeLessThan(CALL_BOUND_MS);
    expect(queues(cache.client).command - sentBefore).toBeLessThanOrEqual(1);
    expect(queues(cache.client).offline).toBe(0);

    expect(source.loads).toBe(loadsBefore + concurrent + 1 + sequential + 200);
    // The counts below assume every call met the unresponsive server; fail loudly if the machine was too slow for that.
    expect(Date.now()).toBeLessThan(blockedUntil - 200);
    return concurrent + 1 + sequential + 200;
  }

  /** The outage's counts and log: every failed read counted, one warning (50 same-key calls shared one read). */
  function expectOneOutage({ cache, logs }: FaultApp, logMark: number, failedReads: number): void {
    expect(outcomes(cache, FIND)).toMatchObject({ hits: 1, misses: 1, errors: failedReads, failed: failedReads + 49 });
    expect(logs.outages(logMark)).toHaveLength(1);
    expect(logs.cacheLines('warn', logMark)).toHaveLength(1);
  }

  /** After the outage: a re-cached key is served as a hit again, and the log says so once. */
  async function expectCachingResumed({ source, cache, logs }: FaultApp, logMark: number): Promise<void> {
    const loads = source.loads;
    for (let i = 0; i < 20; i++) expect(await source.find(9_000)).toEqual({ id: 9_000, load: loads });
    expect(source.loads).toBe(loads);
    const after = outcomes(cache, FIND);
    expect(after.errors).toBe(after.failed - 49);
    expect(logs.cacheLines('warn', logMark)).toHaveLength(1);
    expect(logs.recoveries(logMark)).toHaveLength(1);
  }

  it(
    'CLIENT PAUSE: calls go to the source within commandTimeout, one warning, and caching resumes after the pause',
    async () => {
      server = await startLocalRedis();
      fault = await createFaultApp(server.url);
      const { source, logs } = fault;
      admin = adminClient(server.url);
      expect(await source.find(1)).toEqual({ id: 1, load: 1 });
      expect(await source.find(1)).toEqual({ id: 1, load: 1 });
      const logMark = logs.lines.length;

      const pauseMs = 3_000;
      const pausedAt = Date.now();
      expect(await admin.call('CLIENT', 'PAUSE', String(pauseMs), 'ALL')).toBe('OK');
      const failedReads = await callThroughOutage(fault, pausedAt + pauseMs, { concurrent: 150, sequential: 10 });

      expectOneOutage(fault, logMark, failedReads);
      expect(logs.outages(logMark)[0]).toContain('exceeded commandTimeout (100 ms)');

      // Polls (each a probe of at most commandTimeout) until the pause ends and a value is cached and hit again.
      await waitForHit(fault, 9_000);
      expect(Date.now()).toBeGreaterThanOrEqual(pausedAt + pauseMs - 50);
      await expectCachingResumed(fault, logMark);
      expect(await source.find(1)).toEqual({ id: 1, load: 1 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'DEBUG SLEEP: calls go to the source within commandTimeout, one warning, and caching resumes after the sleep',
    async () => {
      server = await startLocalRedis({ args: ['--enable-debug-command', 'yes'] });
      fault = await createFaultApp(server.url);
      const { source, logs } = fault;
      admin = adminClient(server.url);
      probe = adminClient(server.url);
      await probe.ping();
      expect(await source.find(1)).toEqual({ id: 1, load: 1 });
      expect(await source.find(1)).toEqual({ id: 1, load: 1 });
      const logMark = logs.lines.length;

      // DEBUG SLEEP blocks the whole server, so its reply comes only when it is over: not awaited here.
      const sleepMs = 2_500;
      const sleptAt = Date.now();
      const sleeping = admin.call('DEBUG', 'SLEEP', String(sleepMs / 1_000));
      await waitUntilUnresponsive(probe);
      const failedReads = await callThroughOutage(fault, sleptAt + sleepMs, { concurrent: 100, sequential: 5 });

      expectOneOutage(fault, logMark, failedReads);

      await waitForHit(fault, 9_000);
      expect(await sleeping).toBe('OK');
      await expectCachingResumed(fault, logMark);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'boots against a paused Redis: init waits a bounded time, one warning, and caching starts when it answers',
    async () => {
      server = await startLocalRedis();
      admin = adminClient(server.url);
      const pauseMs = 4_000;
      const pausedAt = Date.now();
      expect(await admin.call('CLIENT', 'PAUSE', String(pauseMs), 'ALL')).toBe('OK');

      // The connection opens but the handshake gets no answer: app.init() gives up after its 2 s wait.
      fault = await createFaultApp(server.url);
      const { source, cache, logs } = fault;
      expect(fault.initMs).toBeLessThan(2_000 + 500);
      expect(cache.client.status).not.toBe('ready');

      const calls = await timedSequence(range(1, 50).map(() => () => source.find(1)));
      expect(calls.values.map((value) => value.load)).toEqual(range(1, 50));
      expect(calls.maxActiveMs).toBeLessThan(CALL_BOUND_MS);
      expect(queues(cache.client).offline).toBe(0);
      expect(outcomes(cache, FIND)).toMatchObject({ hits: 0, misses: 0, failed: 50, errors: 50 });
      // The slow start and the 50 failed calls are one outage: one warning.
      expect(logs.cacheLines('warn')).toEqual([expect.stringContaining('Redis cache unavailable (not reachable yet')]);
      expect(Date.now()).toBeLessThan(pausedAt + pauseMs - 200);

      await waitForHit(fault, 1);
      const loads = source.loads;
      expect(await source.find(1)).toEqual({ id: 1, load: loads });
      expect(source.loads).toBe(loads);
      expect(logs.cacheLines('warn')).toHaveLength(1);
      expect(logs.recoveries()).toHaveLength(1);
    },
    TEST_TIMEOUT_MS,
  );
});
