// Which Redis a test file runs against. The `integration` jest project runs the integration suite on
// one standalone redis-server (TEST_REDIS_URL); `integration-cluster` runs the same files on a
// 3-primary, 3-replica Redis Cluster (TEST_REDIS_CLUSTER_NODES), and marks its files with
// TEST_REDIS_TOPOLOGY=cluster (cluster-topology.setup.mjs). Specs ask here instead of reading the
// variables, so a spec written for one topology gets the other one's equivalent.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

export type RedisTopology = 'standalone' | 'cluster';

export interface ClusterNode {
  host: string;
  port: number;
}

/** The connection option of `RedisCacheModule.forRoot` for the test Redis of this project. */
export type TestRedisConnection = string | { cluster: { nodes: ClusterNode[] } };

export function testTopology(): RedisTopology {
  return process.env.TEST_REDIS_TOPOLOGY === 'cluster' ? 'cluster' : 'standalone';
}

/** The seed nodes of the cluster the `integration-cluster` global setup started (or REDIS_CLUSTER_NODES). */
export function testClusterNodes(): ClusterNode[] {
  const list = process.env.TEST_REDIS_CLUSTER_NODES;
  if (!list) {
    throw new Error(
      'TEST_REDIS_CLUSTER_NODES is not set: run the cluster project through jest (its global setup starts the cluster)',
    );
  }
  return list.split(',').map((entry) => {
    const at = entry.lastIndexOf(':');
    return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
  });
}

/** `redis` for RedisCacheModule: the standalone URL, or `{ cluster: { nodes } }` in the cluster project. */
export function testRedisConnection(): TestRedisConnection {
  if (testTopology() === 'cluster') return { cluster: { nodes: testClusterNodes() } };
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run the tests through jest (its global setup starts Redis)');
  return url;
}

/**
 * A new client of the test Redis that the test owns (an application's "own client" the module adopts):
 * a `Redis`, or a `Cluster` in the cluster project. `options` are the standalone client's; on a
 * Cluster they apply to every node connection, and `lazyConnect` to the Cluster itself.
 */
export function newTestClient(options: RedisOptions = {}): Redis | Cluster {
  const connection = testRedisConnection();
  if (typeof connection === 'string') return new Redis(connection, options);
  const { lazyConnect, ...redisOptions } = options;
  const clusterOptions: ClusterOptions = { lazyConnect, redisOptions };
  return new Cluster(connection.cluster.nodes, clusterOptions);
}

export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/** The clients of `cluster`'s primaries, once it knows them (a Cluster learns its nodes when ready). */
export async function primariesOf(cluster: Cluster): Promise<Redis[]> {
  if (cluster.status !== 'ready') await new Promise((resolve) => cluster.once('ready', resolve));
  return cluster.nodes('master');
}

/**
 * `it`, or `it.skip` in the cluster project, for a test whose mechanism exists only on one server
 * (CLIENT KILL of its one connection, a db number, a server started later on a port chosen before).
 * `reason` names it; a comment next to the test says what covers the same claim on a cluster.
 */
export function standaloneOnly(reason: string): jest.It {
  if (!reason) throw new Error('standaloneOnly needs the reason the test cannot run on a cluster');
  return testTopology() === 'cluster' ? it.skip : it;
}

/**
 * `it`, or `it.failing` in the cluster project: a test that fails on a cluster because of a bug in
 * lib/ that `bug` names. The test still runs there and shows the bug; once lib/ is fixed jest
 * reports it ("failing test passed"), which is the cue to drop this marker.
 */
export function failsOnCluster(bug: string): jest.It {
  if (!bug) throw new Error('failsOnCluster needs the bug that makes the test fail on a cluster');
  return testTopology() === 'cluster' ? it.failing : it;
}
