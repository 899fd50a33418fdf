// Announcements that cost one shard: on a Redis 7+ Cluster a namespace's cleared prefixes and tag
// invalidations go by SPUBLISH on shard channels of the namespace's own slot (store/shard-channels.ts),
// which only that slot's shard relays, instead of a PUBLISH every node relays. Another instance still
// stops serving what was invalidated; `shardedPubSub: false` keeps the classic channels; an instance
// whose sharded subscriber connection is killed subscribes again and hears the next announcement.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { Cacheable, CacheService, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { ACL_CLUSTER_COMMANDS, ACL_PASSWORD_PLACEHOLDER, aclRulesFor, refusedTo } from '../support/acl-user.js';
import { waitFor } from '../support/load-helpers.js';
import { ShardChannels } from '../../lib/store/shard-channels.js';
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

  @Cacheable({ key: 'slow:{0}', ttl: 60 })
  async slow(id: number): Promise<string> {
    this.loads++;
    await new Promise((resolve) => setTimeout(resolve, 300));
    return `slow ${id}`;
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

  /** An app of the namespace, with sharded pub/sub unless `cache` says otherwise. */
  async function start(cache: RedisCacheModuleOptions = {}) {
    const app = await createTestApp({ providers: [Catalog], cache: { namespace: ns, shardedPubSub: true, ...cache } });
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

  it("a lease release goes by SPUBLISH on the key's slot, and wakes a waiter of another instance", async () => {
    const one = await start();
    const other = await start();
    const keys = bookkeeping(ns);
    const routes = new ShardChannels();
    routes.addPerSlot(keys.leaseChannel, `${ns}:@`, 'lease');
    const releases = [1, 2].map((id) => routes.shardFor(keys.leaseChannel, `${ns}:slow:${id}`)!);
    const listener = new Cluster(testClusterNodes(), { shardedSubscribers: true });
    const sharded: Array<[string, string]> = [];
    const classic: string[] = [];
    listener.on('smessage', (channel: string, message: string) => sharded.push([channel, message]));
    listener.on('message', (_channel: string, message: string) => classic.push(message));
    try {
      for (const release of releases) await listener.ssubscribe(release);
      await listener.subscribe(keys.leaseChannel);
      for (const id of [1, 2]) {
        // The other instance's call arrives while the first one loads: it waits for the release.
        const first = one.catalog.slow(id);
        await new Promise((resolve) => setTimeout(resolve, 50));
        const started = performance.now();
        const waited = other.catalog.slow(id);
        expect(await first).toBe(`slow ${id}`);
        const firstDone = performance.now();
        expect(await waited).toBe(`slow ${id}`);
        // Woken by the release, not by the lease's end (lockTtl 10 s) or lockWait (5 s).
        expect(performance.now() - firstDone).toBeLessThan(200);
        expect(performance.now() - started).toBeLessThan(1_000);
      }
      expect(one.catalog.loads + other.catalog.loads).toBe(2);
      await waitFor('both releases to reach the listener', () => sharded.length === 2);
      // The key, then (NUL, the holder's token, the entry) the value the waiter was answered with.
      expect(sharded.map(([channel, message]) => [channel, message.split('\0')[0]])).toEqual([
        [releases[0], `${ns}:slow:1`],
        [releases[1], `${ns}:slow:2`],
      ]);
      expect(sharded.every(([, message]) => message.length > `${ns}:slow:1`.length + 9)).toBe(true);
      expect(calculateSlot(releases[0])).toBe(calculateSlot(`${ns}:slow:1`));
      expect(classic).toEqual([]);
    } finally {
      listener.disconnect();
    }
  });

  describe('as a Redis user holding only what the README grants', () => {
    const user = `nrc-acl-sharded-${process.pid}`;
    const password = randomBytes(12).toString('hex');

    /** Runs `command` on every node of the cluster, primaries and replicas (ACL rules are each node's own). */
    async function onEveryNode<T>(command: (node: Redis) => Promise<T>): Promise<T[]> {
      const results: T[] = [];
      for (const { host, port } of testClusterNodes()) {
        const node = new Redis({ host, port, lazyConnect: true });
        try {
          results.push(await command(node));
        } finally {
          node.disconnect();
        }
      }
      return results;
    }

    /** The user on every node: README's rules, plus `extra`. */
    async function grant(extra: readonly string[]): Promise<RedisCacheModuleOptions> {
      const rules = aclRulesFor(ns).replace(ACL_PASSWORD_PLACEHOLDER, password).split(' ');
      await onEveryNode(async (node) => {
        await node.call('ACL', 'SETUSER', user, 'reset', ...rules, ...extra.map((command) => `+${command}`));
        await node.call('ACL', 'LOG', 'RESET');
      });
      return {
        redis: { cluster: { nodes: testClusterNodes(), options: { redisOptions: { username: user, password } } } },
      };
    }

    afterEach(async () => {
      await Promise.all(apps.splice(0).map((app) => app.close()));
      await onEveryNode((node) => node.call('ACL', 'DELUSER', user));
    });

    it('with the Cluster commands added: clears, tags and lease releases work, nothing refused', async () => {
      const connection = await grant(ACL_CLUSTER_COMMANDS);
      const one = await start(connection);
      const other = await start(connection);
      await other.catalog.item(1);
      other.catalog.version = 2;
      await one.cache.clear('item:');
      await waitFor('the other instance to stop serving the cleared entry', async () =>
        (await other.catalog.item(1)).endsWith('v2'),
      );
      other.catalog.version = 3;
      await one.cache.invalidateTags(['items']);
      await waitFor('the other instance to stop serving the invalidated entry', async () =>
        (await other.catalog.item(1)).endsWith('v3'),
      );
      const first = one.catalog.slow(1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const waited = other.catalog.slow(1);
      expect(await Promise.all([first, waited])).toEqual(['slow 1', 'slow 1']);
      await Promise.all(apps.splice(0).map((app) => app.close()));
      expect((await onEveryNode((node) => refusedTo(node, user))).flat()).toEqual([]);
    });

    it('a release Redis refuses to publish (+spublish taken away) costs the waiter time, not a failed store', async () => {
      const connection = await grant(ACL_CLUSTER_COMMANDS);
      const one = await start({ ...connection, lockWait: 500 });
      const other = await start({ ...connection, lockWait: 500 });
      await onEveryNode((node) => node.call('ACL', 'SETUSER', user, '-spublish'));
      const first = one.catalog.slow(7);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const waited = other.catalog.slow(7);
      expect(await Promise.all([first, waited])).toEqual(['slow 7', 'slow 7']);
      // The holder's value is stored, and its completion did not fail: nothing counted as an error.
      expect(one.cache.stats().errors).toBe(0);
      const loads = one.catalog.loads;
      expect(await one.catalog.slow(7)).toBe('slow 7');
      expect(one.catalog.loads).toBe(loads);
      await onEveryNode((node) => node.call('ACL', 'SETUSER', user, '+spublish'));
    });

    it('without +spublish the bootstrap fails, naming the refusal', async () => {
      const connection = await grant(ACL_CLUSTER_COMMANDS.filter((command) => command !== 'spublish'));
      // Redis 7.0 names the script, not the command it refused there.
      await expect(start(connection)).rejects.toThrow(/cannot use its Redis.*can't run this command/s);
    });

    it('without +ssubscribe the bootstrap fails, naming the refusal', async () => {
      const connection = await grant(ACL_CLUSTER_COMMANDS.filter((command) => command !== 'ssubscribe'));
      await expect(start(connection)).rejects.toThrow(/cannot use its Redis.*NOPERM.*'ssubscribe'/s);
    });
  });

  it("while the namespace's slot moves to another node, another instance stops serving an invalidated entry", async () => {
    const one = await start();
    const other = await start();
    const keys = bookkeeping(ns);
    const slot = calculateSlot(keys.epoch);
    await other.catalog.item(1);
    expect(await other.catalog.item(1)).toBe('item 1 v1');
    const primaries = await primariesOf(redis);
    const source = await namespaceNode();
    const target = primaries.find((node) => node !== source)!;
    const [sourceId, targetId] = [String(await source.cluster('MYID')), String(await target.cluster('MYID'))];
    // The slot half moved (as redis-cli --cluster reshard leaves it between steps): its keys are on
    // the target, asked for there (ASK), while the source still answers for the slot.
    await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId);
    await source.cluster('SETSLOT', slot, 'MIGRATING', targetId);
    const moving = (await source.cluster('GETKEYSINSLOT', slot, 100)) as string[];
    expect(moving).toContain(keys.epoch);
    const { host, port } = target.options;
    await source.call('MIGRATE', host!, port!, '', 0, 5_000, 'KEYS', ...moving);
    try {
      other.catalog.version = 2;
      // Runs on the target (ASK), where nobody subscribes: its announcement is lost. The heartbeat
      // takes the same way and goes unheard, so the other instance stops trusting what it knows.
      await one.cache.invalidateTags(['items']);
      await waitFor(
        'the other instance to stop serving the invalidated entry',
        async () => (await other.catalog.item(1)).endsWith('v2'),
        6_000,
      );
    } finally {
      for (const node of primaries) await node.cluster('SETSLOT', slot, 'NODE', targetId);
    }
  }, 20_000);

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
