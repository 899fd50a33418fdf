// Batched operations go out as pipelines: a multi-key eviction is one write on the module's socket
// (one round trip), whatever the number of keys, and `reclaim` sends each SCAN batch's UNLINKs in one
// write. Counted on the real connections: ioredis writes a pipeline with a single `stream.write`,
// and a command sent on its own with one write per command. On a Cluster the keys live on every
// primary and a pipeline stays on one node: one write per primary, each on its own connection.
// An eviction is also announced to every instance's in-process tier (a PUBLISH): in the same pipeline
// on one server, after it on a Cluster (one more write, on the connection of the first key's node).
// The app keeps an L1 itself, so it always announces (an app of a namespace without any L1 does
// not); the writes of its presence marker (`l1-present`, every 3 s) are not counted.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { CacheEvict, CacheService } from 'nestjs-redis-cache';
import { isCluster, primariesOf } from '../support/redis-topology.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis } from '../support/own-redis.js';
import { waitFor } from '../support/load-helpers.js';
import { bookkeeping, scanKeys, scanValueKeys, setMany } from '../support/redis-keys.js';
import { encodeEntry } from '../../lib/core/cache-entry.js';
import { engineOf } from '../support/engine-of.js';
import type { NamespaceSubscriber } from '../../lib/store/namespace-subscriber.js';
import { createDefaultCodec } from '../../lib/serialization/cache-codec.js';

const KEYS = 300;

@Injectable()
class CatalogService {
  @CacheEvict({ keys: (ids: number[]) => ids.map((id) => `item:${id}`) })
  async removeMany(ids: number[]): Promise<number> {
    return ids.length;
  }
}

describe('pipelining of batched operations', () => {
  const redis = rawRedis();
  let app: INestApplication;
  let cache: CacheService;
  let ns: string;

  beforeEach(async () => {
    ns = uniqueNamespace('pipe');
    app = await createTestApp({ providers: [CatalogService], cache: { namespace: ns, l1: { max: 10, ttl: 1 } } });
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  async function seed(prefix: string, count: number): Promise<string[]> {
    const keys = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
    // Entries of the cache (an eviction leaves anything else alone).
    const entry = encodeEntry(createDefaultCodec(), 'x', Date.now() + 60_000, 1);
    await setMany(
      redis,
      keys.map((key) => `${ns}:${key}`),
      entry,
      60_000,
    );
    return keys;
  }

  /**
   * The module's connections that hold keys: its one connection, or one per primary of a Cluster
   * (connected first: a Cluster opens a node's connection when it first sends it a command).
   */
  async function serverConnections(): Promise<Redis[]> {
    const client = cache.client;
    if (!isCluster(client)) return [client];
    const primaries = await primariesOf(client);
    await Promise.all(primaries.map((primary) => primary.ping()));
    return primaries;
  }

  /** Socket writes of each of the module's connections (see serverConnections) while `work` runs. */
  async function socketWrites<T>(work: () => Promise<T>): Promise<{ result: T; writes: number[] }> {
    const streams = (await serverConnections()).map((connection) => connection.stream);
    // Not the work's: the subscription's heartbeat, a PUBLISH every second on this connection.
    const heartbeat = (engineOf(app).leases as NamespaceSubscriber).heartbeatChannel;
    const originals = streams.map((stream) => stream.write);
    const writes = streams.map(() => 0);
    streams.forEach((stream, i) => {
      const write = originals[i];
      stream.write = function (this: typeof stream, ...args: Parameters<typeof write>) {
        const sent = String(args[0]);
        if (!sent.includes('l1-present') && !sent.includes(heartbeat)) writes[i]++;
        return write.apply(this, args);
      } as typeof write;
    });
    try {
      return { result: await work(), writes };
    } finally {
      streams.forEach((stream, i) => (stream.write = originals[i]));
    }
  }

  /**
   * One write on each connection (as many as there are servers, and at least one key on each); on a
   * Cluster one more, the announcement sent after the pipelines, give or take one (a Cluster run
   * counted a write of the client's own on a node's connection now and then; 300 UNLINKs sent one by
   * one would be 300 writes).
   */
  async function expectOnePipelinePerServer(writes: number[]): Promise<void> {
    const servers = (await serverConnections()).length;
    if (!isCluster(cache.client)) {
      expect(writes).toEqual([1]);
      return;
    }
    expect(writes).toHaveLength(servers);
    for (const count of writes) expect(count).toBeGreaterThanOrEqual(1);
    const total = writes.reduce((sum, count) => sum + count, 0);
    expect(total).toBeGreaterThanOrEqual(servers + 1);
    expect(total).toBeLessThanOrEqual(servers + 2);
  }

  /**
   * Runs an eviction on every server first: on a server that does not know the eviction script yet
   * the keys go again in a second pipeline (see the test of a fresh server below).
   */
  async function loadEvictionScript(): Promise<void> {
    await cache.del(...Array.from({ length: KEYS }, (_, i) => `warm-up:${i}`));
  }

  it(`CacheService.del of ${KEYS} keys is one pipeline: one write, every key gone`, async () => {
    const keys = await seed('del:', KEYS);
    await loadEvictionScript();
    const { result, writes } = await socketWrites(() => cache.del(...keys));
    expect(result).toBe(KEYS);
    await expectOnePipelinePerServer(writes);
    expect(await scanValueKeys(redis, `${ns}:del:*`)).toEqual([]);
  });

  it(`@CacheEvict with keys of ${KEYS} ids is one pipeline`, async () => {
    await seed('item:', KEYS);
    await loadEvictionScript();
    const ids = Array.from({ length: KEYS }, (_, i) => i);
    const { result, writes } = await socketWrites(() => app.get(CatalogService).removeMany(ids));
    expect(result).toBe(KEYS);
    await expectOnePipelinePerServer(writes);
    expect(await scanValueKeys(redis, `${ns}:item:*`)).toEqual([]);
  });

  it(
    `on a server that knows no script yet (a restart), ${KEYS} evictions all land, and the last announcement comes after them`,
    async () => {
      const own = await startOwnRedis();
      const ownApp = await createTestApp({ cache: { redis: own.connection, namespace: ns, l1: { max: 10, ttl: 1 } } });
      const inspector = own.client();
      const subscriber = own.client();
      try {
        const keys = Array.from({ length: KEYS }, (_, i) => `${ns}:fresh:${i}`);
        const entry = encodeEntry(createDefaultCodec(), 'x', Date.now() + 60_000, 1);
        await setMany(inspector, keys, entry, 60_000);
        // At each announcement of the eviction: how many of the keys still held a value.
        const heldAtAnnouncement: number[] = [];
        const channel = bookkeeping(ns).l1Channel;
        await subscriber.subscribe(channel);
        let counting = Promise.resolve(); // one count at a time, in the order the messages came
        subscriber.on('message', (from: string) => {
          if (from !== channel) return;
          counting = counting.then(async () => {
            heldAtAnnouncement.push((await scanValueKeys(inspector, `${ns}:fresh:*`)).length);
          });
        });

        const evicted = await ownApp.get(CacheService).del(...keys.map((key) => key.slice(ns.length + 1)));
        expect(evicted).toBe(KEYS);
        await waitFor('the announcement', () => heldAtAnnouncement.length > 0, 2_000);
        await new Promise((resolve) => setTimeout(resolve, 100)); // a second one, if sent
        expect(await scanValueKeys(inspector, `${ns}:fresh:*`)).toEqual([]);
        // On one server the first pipeline's announcement went out before the keys it could not
        // evict (NOSCRIPT); the second pipeline announces again. The last one finds nothing held.
        expect(heldAtAnnouncement.at(-1)).toBe(0);
        expect(ownApp.get(CacheService).stats().errors).toBe(0);
      } finally {
        subscriber.disconnect();
        inspector.disconnect();
        await ownApp.close();
        await own.stop();
      }
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );

  it('reclaim sends each SCAN batch of UNLINKs in one write', async () => {
    await seed('bulk:', 1_200);
    // Count the SCAN steps on each connection (the shared test database may hold other suites' keys,
    // so their number varies).
    const connections = await serverConnections();
    const originals = connections.map((connection) => connection.scan);
    const scans = connections.map(() => 0);
    connections.forEach((connection, i) => {
      const scan = originals[i];
      connection.scan = function (this: Redis, ...args: unknown[]) {
        scans[i]++;
        return (scan as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof scan;
    });
    let measured;
    try {
      measured = await socketWrites(() => cache.reclaim('bulk:'));
    } finally {
      connections.forEach((connection, i) => (connection.scan = originals[i]));
    }
    expect(measured.result).toBe(1_200);
    expect(await scanKeys(redis, `${ns}:bulk:*`)).toEqual([]);
    // On each connection, one write per SCAN step and at most one per batch it found, plus the
    // announcement of the reclaim to the other instances' in-process tiers (one PUBLISH, on one of
    // them), give or take one (a Cluster run once counted one more on a node's connection: another
    // command of the app's may share it): without pipelining there would be at least 1,200 writes in
    // all, one per UNLINK.
    scans.forEach((count, i) => {
      expect(count).toBeGreaterThanOrEqual(1);
      expect(measured.writes[i]).toBeGreaterThan(count);
      expect(measured.writes[i]).toBeLessThanOrEqual(2 * count + 2);
    });
  });
});
