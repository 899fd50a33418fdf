// Sharded pub/sub through a failover of the namespace's primary, on a cluster of this file's own (3
// primaries, each with a replica; cluster-node-timeout 2 s). While that primary is gone and until
// the instance is subscribed again on its heir, another instance must not serve what an
// invalidation hid (it stops trusting what it knows, and reads the tag keys); once the heir is
// promoted, it subscribes again and hears the invalidations by message. ioredis's sharded
// subscribers can be left with none for the slot after such a failover: the module replaces them.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { startLocalRedisCluster, type LocalRedisCluster } from '../../tools/local-redis-cluster.mjs';
import { clusterView, promotedAsSeenBy, servesSlot } from '../support/cluster-view.js';
import { eventually } from '../support/fault-helpers.js';
import { bookkeeping } from '../support/redis-keys.js';
import { createTestApp, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Catalog {
  version = 1;

  @Cacheable({ key: 'item:{0}', ttl: 600, tags: ['items'] })
  async item(id: number): Promise<string> {
    return `item ${id} v${this.version}`;
  }
}

const FAILOVER_WAIT_MS = 30_000;

describe("sharded pub/sub through a failover of the namespace's primary", () => {
  let cluster: LocalRedisCluster;
  const apps: INestApplication[] = [];
  const ns = uniqueNamespace('shardfail');

  async function start() {
    const app = await createTestApp({
      providers: [Catalog],
      cache: { namespace: ns, shardedPubSub: true, redis: { cluster: { nodes: cluster.nodes } } },
    });
    apps.push(app);
    return { catalog: app.get(Catalog), cache: app.get(CacheService) };
  }

  beforeAll(async () => {
    cluster = await startLocalRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await cluster?.stop();
  });

  it('another instance never keeps serving an invalidated entry, and hears invalidations again on the heir', async () => {
    const one = await start();
    const other = await start();
    await other.catalog.item(1);
    expect(await other.catalog.item(1)).toBe('item 1 v1');

    const slot = calculateSlot(bookkeeping(ns).epoch);
    const before = await clusterView(cluster.primaries[0].port);
    const victim = before.nodes.find((node) => node.flags.includes('master') && servesSlot(node.slots, slot))!;
    const heir = before.nodes.find((node) => node.primaryId === victim.id)!;
    const survivor = before.nodes.find((node) => node.flags.includes('master') && node.id !== victim.id)!;
    await cluster.kill({ host: '127.0.0.1', port: victim.port });
    await eventually(
      'the replica is promoted and the cluster is ok',
      () => promotedAsSeenBy(survivor.port, heir.id),
      FAILOVER_WAIT_MS,
    );

    // Rounds of invalidations from the promotion on: each is seen by the other instance, by message or
    // because it no longer trusts what it knows, never left unseen.
    const deadline = performance.now() + 15_000;
    let heardPromptly = 0;
    while (performance.now() < deadline && heardPromptly < 3) {
      other.catalog.version++;
      const expected = `item 1 v${other.catalog.version}`;
      await eventually('the invalidation to be stored', async () => {
        await one.cache.invalidateTags(['items']);
        return one.cache.status().pendingInvalidations === 0;
      });
      const invalidated = performance.now();
      await eventually('the other instance to stop serving the invalidated entry', async () => {
        return (await other.catalog.item(1)) === expected;
      });
      // Subscribed again on the heir: heard well within a heartbeat's detection time.
      if (other.cache.status().subscribed && performance.now() - invalidated < 500) heardPromptly++;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(heardPromptly).toBe(3);
  }, 90_000);
});
