// Announcements that cost one shard: on a Redis 7+ Cluster a namespace's cleared prefixes and tag
// invalidations go by SPUBLISH on shard channels of the namespace's own slot (store/shard-channels.ts),
// which only that slot's shard relays, instead of a PUBLISH every node relays. Another instance still
// stops serving what was invalidated; `shardedPubSub: false` keeps the classic channels; an instance
// whose sharded subscriber connection is killed subscribes again and hears the next announcement.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { waitFor } from '../support/load-helpers.js';
import { bookkeeping } from '../support/redis-keys.js';
import { primariesOf, testClusterNodes } from '../support/redis-topology.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Catalog {
  loads = 0;
  version = 1;

  @Cacheable({ key: 'item:{0}', ttl: 60, tags: ['items'] })
  async item(id: number): Promise<string> {
    this.loads++;
    return `item ${id} v${this.version}`;
  }
}

/** What a listener of the classic channels and one of the shard channels received, by channel. */
interface Listeners {
  classic: Array<[string, string]>;
  sharded: Array<[string, string]>;
  stop(): Promise<void>;
}

describe('sharded pub/sub on a Cluster', () => {
  const redis = rawRedis() as unknown as Cluster;
  const apps: INestApplication[] = [];
  let ns: string;

  async function start(cache: { shardedPubSub?: boolean } = {}) {
    const app = await createTestApp({ providers: [Catalog], cache: { namespace: ns, ...cache } });
    apps.push(app);
    return { catalog: app.get(Catalog), cache: app.get(CacheService) };
  }

  /** Subscribes to the namespace's prefix and tag channels both ways: classic, and sharded. */
  async function listen(): Promise<Listeners> {
    const keys = bookkeeping(ns);
    const classic: Array<[string, string]> = [];
    const sharded: Array<[string, string]> = [];
    const subscriber = new Cluster(testClusterNodes(), { shardedSubscribers: true });
    subscriber.on('message', (channel: string, message: string) => classic.push([channel, message]));
    subscriber.on('smessage', (channel: string, message: string) => sharded.push([channel, message]));
    await subscriber.subscribe(keys.prefixChannel, keys.tagChannel);
    await subscriber.ssubscribe(keys.shardChannel('prefixes'), keys.shardChannel('tags'));
    return { classic, sharded, stop: async () => void subscriber.disconnect() };
  }

  /** The primary that serves the namespace's slot (its bookkeeping keys and shard channels). */
  async function namespaceNode(): Promise<Redis> {
    await primariesOf(redis);
    const [host, port] = redis.slots[calculateSlot(bookkeeping(ns).epoch)]![0]!.split(':');
    return redis.nodes('master').find((node) => node.options.host === host && node.options.port === Number(port))!;
  }

  /** How many connections subscribe to `shard` on its node (PUBSUB SHARDNUMSUB). */
  async function shardSubscribers(shard: string): Promise<number> {
    const reply = (await (await namespaceNode()).call('PUBSUB', 'SHARDNUMSUB', shard)) as [string, number];
    return Number(reply[1]);
  }

  beforeEach(() => {
    ns = uniqueNamespace('sharded');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('clears and tag invalidations go by SPUBLISH on the namespace slot, and another instance hears them', async () => {
    const one = await start();
    const other = await start();
    const keys = bookkeeping(ns);
    const listeners = await listen();
    try {
      // Both instances (and the listener) subscribe to the shard channels; the listener alone to the
      // classic ones, and hears nothing there.
      expect(await shardSubscribers(keys.shardChannel('prefixes'))).toBe(3);
      expect(await shardSubscribers(keys.shardChannel('tags'))).toBe(3);

      await other.catalog.item(1);
      await other.catalog.item(2);
      other.catalog.version = 2;
      await one.cache.clear('item:1');
      await waitFor('the other instance to stop serving the cleared entry', async () =>
        (await other.catalog.item(1)).endsWith('v2'),
      );
      await one.cache.invalidateTags(['items']);
      await waitFor('the other instance to stop serving the invalidated entry', async () =>
        (await other.catalog.item(2)).endsWith('v2'),
      );
      await waitFor('both announcements to reach the listener', () => listeners.sharded.length >= 2);
      const received = listeners.sharded.map(([channel]) => channel);
      expect(received).toContain(keys.shardChannel('prefixes'));
      expect(received).toContain(keys.shardChannel('tags'));
      // Every shard channel hashes to the namespace's slot: one shard handles them.
      for (const channel of received) expect(calculateSlot(channel)).toBe(calculateSlot(keys.epoch));
      expect(listeners.classic).toEqual([]);
    } finally {
      await listeners.stop();
    }
  });

  it('with shardedPubSub: false the announcements stay on the classic channels', async () => {
    const one = await start({ shardedPubSub: false });
    const other = await start({ shardedPubSub: false });
    const keys = bookkeeping(ns);
    const listeners = await listen();
    try {
      expect(await shardSubscribers(keys.shardChannel('prefixes'))).toBe(1);
      await other.catalog.item(1);
      other.catalog.version = 2;
      await one.cache.clear('item:1');
      await waitFor('the other instance to stop serving the cleared entry', async () =>
        (await other.catalog.item(1)).endsWith('v2'),
      );
      await waitFor('the announcement to reach the listener', () => listeners.classic.length >= 1);
      expect(listeners.classic.map(([channel]) => channel)).toContain(keys.prefixChannel);
      expect(listeners.sharded).toEqual([]);
    } finally {
      await listeners.stop();
    }
  });

  it('its heartbeats go both ways and are heard: the subscription outlives several of them', async () => {
    await start();
    const node = await namespaceNode();
    const shardConnections = async () =>
      String(await node.client('LIST'))
        .split('\n')
        .filter((line) => /\bssub=[1-9]/.test(line))
        .map((line) => /\bid=(\d+)/.exec(line)![1]);
    const before = await shardConnections();
    expect(before).toHaveLength(1);
    // A heartbeat not heard back for two beats makes the instance drop and reconnect its subscriber.
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    expect(await shardConnections()).toEqual(before);
  }, 15_000);

  it('an instance whose sharded subscriber connection was killed subscribes again and hears the next invalidation', async () => {
    const one = await start();
    const other = await start();
    const keys = bookkeeping(ns);
    const shard = keys.shardChannel('tags');
    expect(await shardSubscribers(shard)).toBe(2);
    await other.catalog.item(1);
    // Kill every connection holding a shard subscription on the namespace's node: both instances'.
    const node = await namespaceNode();
    const list = String(await node.client('LIST'));
    const ids = list
      .split('\n')
      .filter((line) => /\bssub=[1-9]/.test(line))
      .map((line) => /\bid=(\d+)/.exec(line)![1]);
    expect(ids.length).toBeGreaterThanOrEqual(2);
    for (const id of ids) await node.client('KILL', 'ID', id);
    await waitFor('both instances to subscribe again', async () => (await shardSubscribers(shard)) === 2, 15_000);
    // Past the catch-up after a lost node (the tags are read again then): from here on only the
    // message can tell the other instance.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await other.catalog.item(1)).toBe('item 1 v1');
    other.catalog.version = 2;
    await one.cache.invalidateTags(['items']);
    await waitFor(
      'the other instance to stop serving the invalidated entry',
      async () => (await other.catalog.item(1)).endsWith('v2'),
      1_500,
    );
  }, 30_000);
});
