// Redis Sentinel: the module on a real deployment started for each test (tools/local-redis-sentinel.mjs):
// a primary, a replica and three sentinels that judge a silent primary down after 1 s. The app is
// given only the sentinels' addresses and the master name, as in production. A SIGKILLed primary is
// the failover under test: while the sentinels promote the replica, every call is answered by the
// source; afterwards the same app (no restart) caches on the new primary, and its lease subscriber
// has moved along with it, so one load per cold key still holds across processes. A manual failover
// (SENTINEL FAILOVER, the old primary kept running) is followed within milliseconds of the sentinels'
// switch, so an eviction made right after it is not lost.
import 'reflect-metadata';
import { Injectable, type Provider } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { Redis } from 'ioredis';
import { Cacheable, CacheService, RedisCacheModule } from 'nestjs-redis-cache';
import { startLocalRedisSentinel, type LocalRedisSentinel } from '../../tools/local-redis-sentinel.mjs';
import {
  adminClient,
  CatalogSource,
  COMMAND_TIMEOUT_MS,
  eventually,
  FIND,
  LogRecorder,
  outcomes,
  range,
  waitForHit,
  type FaultApp,
} from '../support/fault-helpers.js';
import { SteadyCalls } from '../support/steady-calls.js';
import { uniqueNamespace } from '../support/test-app.js';
import { bookkeeping } from '../support/redis-keys.js';
import { stillRunning } from '../support/running-processes.js';

/** How long a test may wait for the sentinels to promote the replica and the app to use it. */
const FAILOVER_WAIT_MS = 60_000;
/**
 * The longest one call may take while the primary is gone. The cache fails fast (the client is not
 * ready) or gives up after commandTimeout (100 ms); the bound leaves room for a noisy 2-core machine
 * and is still far below the seconds a failover takes, so a call that waited for it would fail this.
 */
const OUTAGE_CALL_BOUND_MS = 1_000;
/** How long after a manual failover's switch the app may take to move to the new primary. */
const MOVE_BOUND_MS = 4_000;

/** A load slow enough for callers in two apps to pile up on one cold key while it runs. */
@Injectable()
class SlowReport {
  runs = 0;

  @Cacheable({ key: 'report:{0}', ttl: 60 })
  async build(id: number): Promise<{ id: number; run: number }> {
    const run = ++this.runs;
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { id, run };
  }
}

describe('Redis Sentinel (primary, replica, three sentinels)', () => {
  let deployment: LocalRedisSentinel;
  const apps: FaultApp[] = [];
  const admins: Redis[] = [];
  /** Streams of calls still running (a test that failed midway did not stop its own). */
  const streams: { stop(): Promise<unknown> }[] = [];

  beforeEach(async () => {
    deployment = await startLocalRedisSentinel({ masterName: 'mymaster' });
  }, 30_000);

  afterEach(async () => {
    await Promise.all(streams.splice(0).map((stream) => stream.stop()));
    await Promise.all(apps.splice(0).map((fault) => fault.app.close()));
    for (const admin of admins.splice(0)) admin.disconnect();
    await deployment?.stop();
    // No server or sentinel outlives the test.
    expect(stillRunning(deployment?.pids ?? [])).toEqual([]);
  });

  /** An app whose cache knows only the sentinels and the master name; its log lines are recorded. */
  async function createSentinelApp({
    namespace = uniqueNamespace('sentinel'),
    providers = [],
  }: { namespace?: string; providers?: Provider[] } = {}): Promise<FaultApp> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisCacheModule.forRoot({
          redis: { sentinels: deployment.sentinels, name: deployment.masterName },
          namespace,
          commandTimeout: COMMAND_TIMEOUT_MS,
        }),
      ],
      providers: [CatalogSource, ...providers],
    }).compile();
    const logs = new LogRecorder();
    const app = moduleRef.createNestApplication({ logger: logs });
    const started = performance.now();
    await app.init();
    const fault: FaultApp = {
      app,
      source: app.get(CatalogSource),
      cache: app.get(CacheService),
      logs,
      namespace,
      initMs: performance.now() - started,
      itemKey: (id) => `${namespace}:item:${id}`,
    };
    apps.push(fault);
    return fault;
  }

  async function closeApp(fault: FaultApp): Promise<void> {
    apps.splice(apps.indexOf(fault), 1);
    await fault.app.close();
  }

  /** Calls `find` on `ids` in turn from a few loops; a value loaded before the call started came from the cache. */
  function steadyFinds(source: CatalogSource, ids: number[]): SteadyCalls<{ id: number; load: number }> {
    const stream = new SteadyCalls({
      call: (n) => source.find(ids[n % ids.length]),
      before: () => source.loads,
      cached: (value, loadsAtStart) => value.load <= loadsAtStart,
    });
    streams.push(stream);
    return stream;
  }

  /** Whether the cache's connections (commands and lease subscriber) are all on `to`, and ready. */
  async function movedTo(to: Redis, from: Redis, { client }: CacheService): Promise<boolean> {
    return client.status === 'ready' && (await cacheConnections(from)) === 0 && (await cacheConnections(to)) === 2;
  }

  /** A plain client of one server (or sentinel) of the deployment, by port. */
  function admin(port: number): Redis {
    const client = adminClient(`redis://127.0.0.1:${port}`);
    admins.push(client);
    return client;
  }

  /** Connections the cache opened on a server (its clients carry the connection name 'nestjs-redis-cache'). */
  async function cacheConnections(server: Redis): Promise<number> {
    const list = (await server.client('LIST')) as string;
    return list.split('\n').filter((line) => / name=nestjs-redis-cache /.test(line)).length;
  }

  /** How many connections are subscribed to the lease-release channel of `namespace` on a server. */
  async function leaseSubscribers(server: Redis, namespace: string): Promise<number> {
    const [, count] = (await server.pubsub('NUMSUB', bookkeeping(namespace).leaseChannel)) as [string, number];
    return Number(count);
  }

  it('caches through the sentinels: a miss, then a hit, with the entry on the primary they name', async () => {
    const fault = await createSentinelApp();
    const { source, cache } = fault;
    const primary = admin(deployment.primary.port);
    const replica = admin(deployment.replica.port);
    expect(await deployment.currentPrimary()).toEqual({ host: '127.0.0.1', port: deployment.primary.port });

    expect(await source.find(1)).toEqual({ id: 1, load: 1 });
    expect(await source.find(1)).toEqual({ id: 1, load: 1 });
    expect(outcomes(cache, FIND)).toMatchObject({ hits: 1, misses: 1, failed: 0, errors: 0 });

    // Written on the primary with its TTL, and replicated: what a failover will promote.
    expect(await primary.pttl(fault.itemKey(1))).toBeGreaterThan(55_000);
    await eventually('the entry reaches the replica', async () => (await replica.exists(fault.itemKey(1))) === 1);
    // The command connection and the lease subscriber both went where the sentinels pointed.
    expect(await cacheConnections(primary)).toBe(2);
    expect(await cacheConnections(replica)).toBe(0);
    expect(await leaseSubscribers(primary, fault.namespace)).toBe(1);
  });

  it('answers every call from the source while the primary is killed, and caches again after the failover without a restart', async () => {
    const fault = await createSentinelApp();
    const { source, cache, logs } = fault;
    const ids = range(1, 5);
    for (const id of ids) await source.find(id);
    await waitForHit(fault, 1);
    const warm = outcomes(cache, FIND);
    expect(warm.errors).toBe(0);
    // The warm entries are on the replica too, so the promoted replica can serve them.
    const replica = admin(deployment.replica.port);
    await eventually('the replica has every warm entry', async () => {
      return (await replica.exists(...ids.map((id) => fault.itemKey(id)))) === ids.length;
    });

    const stream = steadyFinds(source, ids);
    await eventually('the stream is served from the cache', () => stream.calls.some((call) => call.cached));
    const logMark = logs.lines.length;

    const killStarted = performance.now();
    const loadsAtKill = source.loads;
    await deployment.primary.kill();
    // The old primary has exited: from here on only the promoted replica can serve a hit.
    const killed = performance.now();
    const promoted = await deployment.waitForPromotion(deployment.primary.port, FAILOVER_WAIT_MS);
    const promotedAt = performance.now();
    expect(promoted.port).toBe(deployment.replica.port);
    // A hit from the new primary serves a warm entry, loaded before the kill. (A call that joined a
    // load of the same id running in this process during the outage also gets a value loaded before
    // it started, but a value loaded after the kill.)
    const firstHitSince = () =>
      stream.calls.find(
        (call) => call.startedAt >= killed && call.value !== undefined && call.value.load <= loadsAtKill,
      );
    await eventually('the app serves a hit from the new primary', () => !!firstHitSince(), FAILOVER_WAIT_MS);
    const firstHit = firstHitSince()!;
    // A few more calls on the new primary, then stop.
    const enough = stream.calls.length + 20;
    await eventually('20 more calls', () => stream.calls.length >= enough);
    const calls = await stream.stop();

    // No call failed, each got the value of its own id, and none waited for the failover.
    expect(stream.failures()).toEqual([]);
    calls.forEach((call) => expect(ids).toContain(call.value!.id));
    const slowest = Math.max(...calls.map((call) => call.endedAt - call.startedAt));
    expect(slowest).toBeLessThan(OUTAGE_CALL_BOUND_MS);
    // The outage happened under the stream, and those calls went to the source because the cache
    // failed (outcome `error`), not because it missed.
    const duringOutage = calls.filter((call) => call.startedAt >= killed && call.endedAt < firstHit.startedAt);
    expect(duringOutage.length).toBeGreaterThan(0);
    expect(outcomes(cache, FIND).failed - warm.failed).toBeGreaterThan(0);

    // Caching again, on the new primary: a new key is a miss, then a hit, and is stored there.
    const loads = source.loads;
    expect(await source.find(100)).toEqual({ id: 100, load: loads + 1 });
    expect(await source.find(100)).toEqual({ id: 100, load: loads + 1 });
    expect(await replica.pttl(fault.itemKey(100))).toBeGreaterThan(55_000);
    expect(cache.client.status).toBe('ready');
    // The lease subscriber reconnects on its own schedule: within one reconnect delay (2 s at most).
    await eventually(
      'both connections are on the new primary',
      async () => (await cacheConnections(replica)) === 2,
      5_000,
    );

    // One warning for the outage and one line when it ended, however many calls and reconnects failed.
    expect(logs.outages(logMark)).toHaveLength(1);
    expect(logs.cacheLines('warn', logMark)).toHaveLength(1);
    expect(logs.recoveries(logMark)).toHaveLength(1);

    if (process.env.SENTINEL_VERBOSE) {
      const measured = {
        promotedMs: Math.round(promotedAt - killStarted),
        firstHitMs: Math.round(firstHit.endedAt - killStarted),
        callsDuringOutage: duringOutage.length,
        calls: calls.length,
        slowestCallMs: Math.round(slowest),
      };
      process.stdout.write(`sentinel failover: ${JSON.stringify(measured)}\n`);
    }
  }, 90_000);

  // Each connection races the sentinels' announcements on its own: with ioredis's failoverDetector,
  // one announcement landing while a client asked a sentinel for the primary ended it for good
  // ('end', never reconnected: no hit again), and a sentinel announcing after a client had reached the
  // new primary dropped it there (a second outage). About 1 connection in 14 did one or the other,
  // so 20 apps (40 connections) show either at nearly every run; none may.
  it('moves every connection of 20 apps to the new primary once, after a killed primary', async () => {
    const fleet = await Promise.all(range(0, 20).map(() => createSentinelApp()));
    await Promise.all(fleet.map((fault) => waitForHit(fault, 1)));
    const readies = fleet.map(({ cache }) => {
      const counted = { ready: 0 };
      cache.client.on('ready', () => counted.ready++);
      return counted;
    });

    await deployment.primary.kill();
    await deployment.waitForPromotion(deployment.primary.port, FAILOVER_WAIT_MS);
    const statuses = () => fleet.map(({ cache }) => cache.client.status);
    await eventually('every client connected again, or ended', () =>
      fleet.every(({ cache }, i) => readies[i].ready > 0 || cache.client.status === 'end'),
    );
    // Past the last sentinel's announcement: a late one would drop connections now.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(statuses()).toEqual(fleet.map(() => 'ready'));
    expect(readies.map(({ ready }) => ready)).toEqual(fleet.map(() => 1));

    await Promise.all(fleet.map((fault) => waitForHit(fault, 1)));
    const promoted = admin(deployment.replica.port);
    await eventually(
      'every connection is on the new primary',
      async () => (await cacheConnections(promoted)) === 2 * fleet.length,
      5_000,
    );
  }, 90_000);

  it('still runs the method once for 50 concurrent cold calls in two apps after the failover', async () => {
    const namespace = uniqueNamespace('sentinel-lease');
    const first = await createSentinelApp({ namespace, providers: [SlowReport] });
    const second = await createSentinelApp({ namespace, providers: [SlowReport] });
    const reports = [first.app.get(SlowReport), second.app.get(SlowReport)];
    const runs = () => reports[0].runs + reports[1].runs;

    /** 25 calls in each app at once on `id`: how many loads ran, and the values the 50 callers got. */
    const stampede = async (id: number) => {
      const before = runs();
      const values = await Promise.all(range(0, 50).map((i) => reports[i % 2].build(id)));
      return { loads: runs() - before, values };
    };

    // Before the failover. This loads the lease scripts on the old primary; a promoted replica need not
    // have them (it answers NOSCRIPT and the store sends the script in full).
    const warm = await stampede(1);
    expect(warm.loads).toBe(1);
    expect(new Set(warm.values.map((value) => JSON.stringify(value))).size).toBe(1);

    await deployment.primary.kill();
    await deployment.waitForPromotion(deployment.primary.port, FAILOVER_WAIT_MS);
    await waitForHit(first, 1);
    await waitForHit(second, 1);
    // Both apps' lease subscribers reconnected to the new primary: releases published there reach them.
    const promoted = admin(deployment.replica.port);
    await eventually(
      "both apps' lease subscribers are on the new primary",
      async () => (await leaseSubscribers(promoted, namespace)) === 2,
      FAILOVER_WAIT_MS,
    );

    /** Each app's hits and misses of SlowReport.build so far: [first, second]. */
    const counted = () =>
      [first, second]
        .map(({ cache }) => outcomes(cache, 'SlowReport.build'))
        .map(({ hits, misses }) => ({ hits, misses }));
    const countedBefore = counted();
    const after = await stampede(2);
    expect(after.loads).toBe(1);
    expect(new Set(after.values.map((value) => JSON.stringify(value))).size).toBe(1);
    expect(after.values[0].id).toBe(2);
    // Each app's 25 callers share one read (in-process single-flight), so all get its outcome: the app
    // that loaded, 25 misses; the other got that value through Redis, 25 hits, not a load of its own.
    const deltas = counted().map(({ hits, misses }, i) => ({
      hits: hits - countedBefore[i].hits,
      misses: misses - countedBefore[i].misses,
    }));
    expect(deltas.sort((a, b) => a.hits - b.hits)).toEqual([
      { hits: 0, misses: 25 },
      { hits: 25, misses: 0 },
    ]);
    expect(await promoted.pttl(`${namespace}:report:2`)).toBeGreaterThan(55_000);
  }, 90_000);

  it('follows a manual failover (SENTINEL FAILOVER) with the old primary still running, without a restart', async () => {
    const fault = await createSentinelApp();
    const { source, cache } = fault;
    const ids = range(1, 5);
    for (const id of ids) await source.find(id);
    await waitForHit(fault, 1);
    const oldPrimary = admin(deployment.primary.port);
    const newPrimary = admin(deployment.replica.port);

    const stream = steadyFinds(source, ids);
    const promoted = await deployment.failover(FAILOVER_WAIT_MS);
    const switched = performance.now();
    expect(promoted.port).toBe(deployment.replica.port);
    await eventually(
      'the cache has moved to the new primary',
      () => movedTo(newPrimary, oldPrimary, cache),
      FAILOVER_WAIT_MS,
    );
    const moved = performance.now() - switched;
    await eventually('a hit after the move', () => !!stream.firstCachedSince(switched + moved), FAILOVER_WAIT_MS);
    await stream.stop();
    expect(stream.failures()).toEqual([]);

    // Caching on the new primary, with the lease subscriber there too.
    const loads = source.loads;
    expect(await source.find(100)).toEqual({ id: 100, load: loads + 1 });
    expect(await source.find(100)).toEqual({ id: 100, load: loads + 1 });
    expect(await newPrimary.pttl(fault.itemKey(100))).toBeGreaterThan(55_000);
    expect(await leaseSubscribers(newPrimary, fault.namespace)).toBe(1);
    expect(cache.client.status).toBe('ready');
    if (process.env.SENTINEL_VERBOSE) {
      process.stdout.write(`sentinel manual failover: the cache moved ${Math.round(moved)} ms after the switch\n`);
    }
  }, 90_000);

  // ioredis leaves a primary only when that primary drops its clients. After a manual failover (or a
  // partition) the old primary stays a writable primary until Sentinel demotes it, 8-10 s after the
  // switch, and an eviction made there is lost in the resync. The session follows the sentinels'
  // +switch-master for the connections the module opened (store/sentinel-switches.ts).
  it('leaves the old primary as soon as the sentinels switch, so an eviction right after a manual failover is not lost', async () => {
    const fault = await createSentinelApp();
    const { source, cache } = fault;
    const ids = range(1, 5);
    for (const id of ids) await source.find(id);
    await waitForHit(fault, 1);
    const oldPrimary = admin(deployment.primary.port);
    const newPrimary = admin(deployment.replica.port);
    await eventually('the replica has the entry', async () => (await newPrimary.exists(fault.itemKey(1))) === 1);

    const stream = steadyFinds(source, ids);
    const promoted = await deployment.failover(FAILOVER_WAIT_MS);
    expect(promoted.port).toBe(deployment.replica.port);
    // Well before Sentinel demotes the old primary, which would move any client.
    await eventually(
      'the cache has left the old primary for the new one',
      () => movedTo(newPrimary, oldPrimary, cache),
      MOVE_BOUND_MS,
    );
    // A hit on the new primary: the cache counts Redis as up again (while it probes after an outage,
    // it would skip the eviction below and replay it later).
    const moved = performance.now();
    await eventually('a hit on the new primary', () => !!stream.firstCachedSince(moved), FAILOVER_WAIT_MS);

    // The stream may reload the key right after the eviction: any value loaded after it is fine, the
    // one cached before it is stale.
    const loadsAtEviction = source.loads;
    expect(await cache.del('item:1')).toBe(1);
    await eventually(
      'the old primary is a replica of the new one, in sync',
      async () => {
        const info = await oldPrimary.info('replication');
        return /role:slave/.test(info) && /master_link_status:up/.test(info);
      },
      FAILOVER_WAIT_MS,
    );
    expect((await source.find(1)).load).toBeGreaterThan(loadsAtEviction);
    await stream.stop();
    expect(stream.failures()).toEqual([]);

    // Closing the app leaves nothing subscribed on the sentinels (nor anything keeping the process alive).
    await closeApp(fault);
    for (const { port } of deployment.sentinels) {
      const sentinel = admin(port);
      await eventually(`no subscription left on sentinel ${port}`, async () => {
        const list = (await sentinel.client('LIST')) as string;
        return !/ sub=[1-9]/.test(list);
      });
    }
  }, 90_000);
});
