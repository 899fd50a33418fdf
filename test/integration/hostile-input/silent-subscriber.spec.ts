// Hostile input and lost state: a subscription that dies silently. A NAT or load balancer that
// forgets a connection leaves its socket open and simply stops passing bytes, so the subscriber
// connection looks healthy while no prefix clear or L1 invalidation reaches it. The instance must
// notice within SILENCE_DETECTED_WITHIN_MS (its heartbeat through the command connection is not
// heard back) and from then on serve none of what was cleared meanwhile. App A talks to the test's
// own redis-server through a freezing TCP proxy on loopback (test/support/freezing-proxy.ts), app B
// directly; both share one namespace, and B clears while A's traffic is frozen.
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { CacheService, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { HEARTBEAT_MS, SILENCE_DETECTED_WITHIN_MS } from '../../../lib/store/namespace-subscriber.js';
import { startLocalRedis, type LocalRedisServer } from '../../../tools/local-redis-server.mjs';
import { CALL_BOUND_MS, COMMAND_TIMEOUT_MS, eventually, range, timed } from '../../support/fault-helpers.js';
import { startFreezingProxy, type FreezingProxy } from '../../support/freezing-proxy.js';
import { measureStalls } from '../../support/stall-meter.js';
import { POST, Posts, subscribeCalls } from '../../support/subscriber-faults.js';
import { createTestApp, uniqueNamespace } from '../../support/test-app.js';
import { bookkeeping } from '../../support/redis-keys.js';

/**
 * What the test waits beyond the stated window before it asserts: the poll that sees the detection
 * (25 ms), the marker read that follows it, and timer jitter. The time the process could not run
 * meanwhile is added on top (see `waitWindow`), so a loaded machine stretches the wait, not the claim.
 */
const MARGIN_MS = 300;

interface Instance {
  app: INestApplication;
  posts: Posts;
  cache: CacheService;
}

/** Hits, L1 hits and misses of `Posts.post` so far. */
function counts({ cache }: Instance): { hits: number; l1Hits: number; misses: number } {
  const stats = cache.stats().byName[POST];
  return { hits: stats?.hits ?? 0, l1Hits: stats?.l1Hits ?? 0, misses: stats?.misses ?? 0 };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a silent subscriber is noticed', () => {
  let server: LocalRedisServer;
  /** Inspects the server, and watches app A's heartbeats on a subscription of its own. */
  let admin: Redis;
  let watcher: Redis;
  let proxy: FreezingProxy | undefined;
  const apps: INestApplication[] = [];
  /** `performance.now()` of each heartbeat published on the watched channel. */
  let heartbeats: number[] = [];
  let watched: string | undefined;

  beforeAll(async () => {
    server = await startLocalRedis();
    admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    watcher = new Redis(server.url, { maxRetriesPerRequest: 1 });
    watcher.on('message', (channel: string) => {
      if (channel === watched) heartbeats.push(performance.now());
    });
  });

  afterEach(async () => {
    // A connection still frozen would hold app.close() forever: the cache QUITs a connection that
    // looks up, and waits for the reply. What the proxy held is delivered, so every QUIT is answered.
    proxy?.thaw({ deliver: true });
    await Promise.all(apps.splice(0).map((app) => app.close()));
    if (watched) await watcher.unsubscribe(watched);
    watched = undefined;
    heartbeats = [];
    await proxy?.close();
    proxy = undefined;
  });

  afterAll(async () => {
    watcher.disconnect();
    admin.disconnect();
    await server.stop();
  });

  async function start(redis: string, namespace: string, cache: RedisCacheModuleOptions = {}): Promise<Instance> {
    const app = await createTestApp({ providers: [Posts], cache: { redis, namespace, ...cache } });
    apps.push(app);
    return { app, posts: app.get(Posts), cache: app.get(CacheService) };
  }

  /**
   * Starts app A through the proxy, before any other app of `namespace`, and watches its heartbeat
   * channel: the lease channel's only `lease:<id>` channel on the server then.
   */
  async function startWatchedApp(namespace: string, cache: RedisCacheModuleOptions = {}): Promise<Instance> {
    proxy = await startFreezingProxy({ host: '127.0.0.1', port: server.port });
    const a = await start(proxy.url(), namespace, cache);
    const channels = (await admin.pubsub('CHANNELS', `${bookkeeping(namespace).leaseChannel}:*`)) as string[];
    expect(channels).toHaveLength(1);
    watched = channels[0];
    await watcher.subscribe(watched);
    return a;
  }

  /**
   * Freezes the proxy just after A's heartbeat came back: its next one goes out about a heartbeat
   * period later and is the first that goes unheard, so detection takes as long as the stated window
   * allows (the adversarial phase). Freezes anyway when none comes (an instance without heartbeats
   * must fail on what it serves, not here). Returns `performance.now()` of the freeze.
   */
  async function freezeAfterHeartbeat(which: 'all' | 'subscribers'): Promise<number> {
    const seen = heartbeats.length;
    const deadline = performance.now() + 2 * HEARTBEAT_MS;
    while (heartbeats.length === seen && performance.now() < deadline) await sleep(5);
    // A's copy passes the proxy a little later than the watcher's: let it arrive.
    await sleep(20);
    proxy!.freeze(which);
    return performance.now();
  }

  /**
   * Calls `probe` every 25 ms until it reports that the instance treats its subscription as lost, for
   * at most the stated window (plus margin) after `since`; then waits out the rest of that window,
   * lengthened by the time this process could not run since `since` (timers fired late, the library's
   * heartbeat timer too). Returns when the probe first reported it (ms after `since`), if it did.
   */
  async function waitWindow(since: number, stalls: () => number, probe: () => Promise<boolean>) {
    const end = since + SILENCE_DETECTED_WITHIN_MS + MARGIN_MS;
    let detectedAfterMs: number | undefined;
    while (performance.now() < end) {
      if (detectedAfterMs === undefined && (await probe())) detectedAfterMs = performance.now() - since;
      await sleep(25);
    }
    let stalled = stalls();
    while (stalled > 0) {
      const more = measureStalls();
      await sleep(stalled);
      stalled = more();
    }
    return { detectedAfterMs, waitedMs: performance.now() - since };
  }

  /**
   * After a freeze at `frozenAt` and a clear by another app: whether `a` still served the cleared
   * `probeId` (loaded as `cachedLoad`) right after (recorded, not asserted), then waitWindow with
   * "`a` loads `probeId` from the source" as the probe.
   */
  async function waitUntilNoticed(
    a: Instance,
    probeId: number,
    cachedLoad: number,
    frozenAt: number,
    stalls: () => number,
  ) {
    const probeLoads = a.posts.loads;
    const servedClearedAtFirst = (await a.posts.post(probeId)).load === cachedLoad;
    const window = await waitWindow(frozenAt, stalls, async () => (await a.posts.post(probeId)).load > probeLoads);
    return { servedClearedAtFirst, ...window };
  }

  const subscribes = () => subscribeCalls(admin);

  function report(line: string): void {
    if (process.env.SILENT_SUBSCRIBER_VERBOSE) process.stdout.write(`silent-subscriber ${line}\n`);
  }

  /** Reads `ids` on `a`, one after another: the ids served a value loaded before (`load <= loads`). */
  async function servedFromCache(a: Instance, ids: number[], loads: number): Promise<number[]> {
    const served: number[] = [];
    for (const id of ids) if ((await a.posts.post(id)).load <= loads) served.push(id);
    return served;
  }

  /** Reads `id` until a read is served from A's in-process tier (it keeps values ~1 s after startup). */
  async function untilL1Serves(a: Instance, id: number, timeoutMs = 5_000): Promise<void> {
    await eventually(
      `A serves post ${id} from L1`,
      async () => {
        const { l1Hits } = counts(a);
        await a.posts.post(id);
        return counts(a).l1Hits > l1Hits;
      },
      timeoutMs,
    );
  }

  /**
   * A loads `ids` and reads them back from the cache; with an L1, until they are served from it (a
   * value enters L1 when read from Redis: a first read loads, a second keeps it, a third is an L1 hit).
   */
  async function hold(a: Instance, ids: number[], l1: boolean): Promise<Map<number, { id: number; load: number }>> {
    const cached = new Map<number, { id: number; load: number }>();
    for (const id of ids) cached.set(id, await a.posts.post(id));
    for (const id of ids) expect(await a.posts.post(id)).toEqual(cached.get(id));
    if (l1) {
      const before = counts(a).l1Hits;
      for (const id of ids) expect(await a.posts.post(id)).toEqual(cached.get(id));
      expect(counts(a).l1Hits).toBe(before + ids.length);
    }
    return cached;
  }

  it.each([
    ['its Redis entries', {}],
    ['its Redis entries and its in-process tier', { l1: { max: 100, ttl: '1m' } }],
  ] as Array<[string, RedisCacheModuleOptions]>)(
    'a silent subscription: past the window the instance serves none of %s cleared meanwhile, and resubscribes',
    async (_, cache) => {
      const l1 = cache.l1 !== undefined;
      const namespace = uniqueNamespace('silent');
      const a = await startWatchedApp(namespace, cache);
      const b = await start(server.url, namespace);
      const probeId = 0;
      const ids = range(1, 5);
      const bIds = range(101, 3);

      // A caches the posts and reads them back from the cache; B reads the same entries from Redis.
      if (l1) await untilL1Serves(a, probeId);
      const cached = await hold(a, [probeId, ...ids, ...bIds], l1);
      for (const id of bIds) expect(await b.posts.post(id)).toEqual(cached.get(id));
      expect(b.posts.loads).toBe(0);
      // A's command connection and its subscriber go through the proxy.
      expect(proxy!.connections()).toEqual({ open: 2, subscribers: 1 });
      const subscribed = await subscribes();

      const frozenAt = await freezeAfterHeartbeat('subscribers');
      const stalls = measureStalls();
      await b.cache.clear('post:');
      // B stops serving the cleared entries at once.
      for (const id of bIds) expect(await b.posts.post(id)).toEqual({ id, load: id - 100 });
      expect(b.posts.loads).toBe(bIds.length);

      // A's subscription is frozen, so the clear has not reached it: until A notices, it may go on
      // serving what was cleared (right after the clear it does). Not asserted; recorded.
      const { servedClearedAtFirst, detectedAfterMs, waitedMs } = await waitUntilNoticed(
        a,
        probeId,
        cached.get(probeId)!.load,
        frozenAt,
        stalls,
      );
      report(
        `frozen subscriber${l1 ? ' with L1' : ''}: served a cleared entry right after the clear: ${servedClearedAtFirst}; ` +
          `noticed after ${detectedAfterMs?.toFixed(0)} ms; asserted after ${waitedMs.toFixed(0)} ms`,
      );

      // Past the window: every cleared entry comes from the source, none from the cache.
      const before = { loads: a.posts.loads, ...counts(a) };
      expect(await servedFromCache(a, ids, before.loads)).toEqual([]);
      expect(a.posts.loads).toBe(before.loads + ids.length);
      expect(counts(a)).toEqual({ hits: before.hits, l1Hits: before.l1Hits, misses: before.misses + ids.length });

      // One reconnect, on a new connection (the proxy leaves it alone): the frozen one was closed,
      // and the server saw A subscribe again, at most twice (ioredis's own resubscription and the
      // listener's): no reconnect storm.
      await eventually('A subscribes again', async () => (await subscribes()) > subscribed, 5_000);
      expect(proxy!.connections()).toEqual({ open: 2, subscribers: 1 });
      const resubscribes = (await subscribes()) - subscribed;
      expect(resubscribes).toBeLessThanOrEqual(2);
      report(`SUBSCRIBE commands after the reconnect: ${resubscribes}`);

      // A caches again: a second read is a hit (with an L1, served from it: L1 serves only while
      // subscribed, so A listens on its new subscription).
      for (const id of ids) {
        const first = await a.posts.post(id);
        expect(await a.posts.post(id)).toEqual(first);
      }
      expect(counts(a).hits).toBe(before.hits + 2 * ids.length);
      if (l1) {
        await untilL1Serves(a, 1);
        return;
      }

      // The new subscription is the one A listens on: frozen in turn, it is noticed again.
      expect(await a.posts.post(probeId)).toEqual(await a.posts.post(probeId));
      const reprobeLoads = a.posts.loads;
      const resubscribed = await subscribes();
      const refrozenAt = await freezeAfterHeartbeat('subscribers');
      const restalls = measureStalls();
      await b.cache.clear('post:');
      const second = await waitWindow(
        refrozenAt,
        restalls,
        async () => (await a.posts.post(probeId)).load > reprobeLoads,
      );
      report(
        `frozen again: noticed after ${second.detectedAfterMs?.toFixed(0)} ms; asserted after ${second.waitedMs.toFixed(0)} ms`,
      );
      const again = { loads: a.posts.loads, ...counts(a) };
      expect(await servedFromCache(a, ids, again.loads)).toEqual([]);
      expect(a.posts.loads).toBe(again.loads + ids.length);
      expect(counts(a).hits).toBe(again.hits);
      // Still no reconnect storm: one subscriber connection, replaced once more.
      await eventually('A subscribes once more', async () => (await subscribes()) > resubscribed, 5_000);
      expect(proxy!.connections()).toEqual({ open: 2, subscribers: 1 });
      expect((await subscribes()) - resubscribed).toBeLessThanOrEqual(2);
    },
    30_000,
  );

  it('a frozen connection: past the window the in-process tier serves none of the entries cleared meanwhile, and serves again after a thaw', async () => {
    const namespace = uniqueNamespace('silent-all');
    const a = await startWatchedApp(namespace, { l1: { max: 100, ttl: '1m' }, commandTimeout: COMMAND_TIMEOUT_MS });
    const b = await start(server.url, namespace);
    const probeId = 0;
    const ids = range(1, 5);

    await untilL1Serves(a, probeId);
    const cached = await hold(a, [probeId, ...ids], true);

    const frozenAt = await freezeAfterHeartbeat('all');
    const stalls = measureStalls();
    await b.cache.clear('post:');
    for (const id of ids) expect((await b.posts.post(id)).load).toBe(id);

    // Until A notices, its L1 may go on serving what was cleared (right after the clear it does).
    const { servedClearedAtFirst, detectedAfterMs, waitedMs } = await waitUntilNoticed(
      a,
      probeId,
      cached.get(probeId)!.load,
      frozenAt,
      stalls,
    );
    report(
      `frozen connection with L1: served a cleared entry right after the clear: ${servedClearedAtFirst}; ` +
        `noticed after ${detectedAfterMs?.toFixed(0)} ms; asserted after ${waitedMs.toFixed(0)} ms`,
    );

    // Past the window: neither L1 nor Redis serves anything. A's commands time out through the
    // frozen proxy, and each call still answers from the source within a command timeout.
    const before = { loads: a.posts.loads, ...counts(a) };
    const served: number[] = [];
    for (const id of ids) {
      const { value, activeMs } = await timed(() => a.posts.post(id));
      if (value.load <= before.loads) served.push(id);
      expect(activeMs).toBeLessThan(CALL_BOUND_MS);
    }
    expect(served).toEqual([]);
    expect(a.posts.loads).toBe(before.loads + ids.length);
    expect(counts(a)).toMatchObject({ hits: before.hits, l1Hits: before.l1Hits });
    // No reconnect storm while frozen: the command connection and one subscriber connection (the
    // one opened after the silence was noticed, waiting for its first answer).
    expect(proxy!.connections().open).toBeLessThanOrEqual(2);

    // The bytes held meanwhile arrive late (a stall, as TCP retransmits them): A's subscriber
    // completes its connection and subscribes, and L1 serves again, which it does only while subscribed.
    proxy!.thaw({ deliver: true });
    const thawedAt = performance.now();
    // Serving again takes the late bytes, a subscription, the markers re-read and a presence marker
    // written and settled (1 s): 1.4 s in local runs. It once took more than 10 s and once more than
    // 20 s in CI: the markers' re-read met the outage's one probe running, failed at once and was never
    // tried again, so L1 stayed off for good (failed-catch-up.spec.ts; now tried again while the
    // subscription lasts).
    await untilL1Serves(a, 1, 10_000);
    report(
      `frozen connection with L1: served from L1 again ${(performance.now() - thawedAt).toFixed(0)} ms after the thaw`,
    );
    expect(proxy!.connections()).toEqual({ open: 2, subscribers: 1 });
  }, 45_000);
});
