// A Redis of one test's own, of the topology its project runs: a fresh redis-server, or a fresh
// 3-primary Redis Cluster in the cluster project. For specs that must not share the test Redis:
// they count its commands (INFO commandstats), kill it, or keep a small commandTimeout away from the
// load of the other suites running beside them.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { startLocalRedisCluster } from '../../tools/local-redis-cluster.mjs';
import { startLocalRedis } from '../../tools/local-redis-server.mjs';
import { testTopology, type ClusterNode, type RedisTopology, type TestRedisConnection } from './redis-topology.js';

/**
 * The timeout of a test that starts its own Redis: forming a cluster takes 2-4 s on a loaded machine,
 * on top of the test's own work (jest's default is 5 s).
 */
export const OWN_REDIS_TEST_TIMEOUT_MS = 20_000;

export interface OwnRedis {
  readonly topology: RedisTopology;
  /** RedisCacheModule's `redis` option for it: a URL, or `{ cluster: { nodes } }`. */
  readonly connection: TestRedisConnection;
  /**
   * A new plain client, for the test to inspect or adopt; disconnect it. On a cluster it is a
   * `Cluster` typed `Redis`, as `rawRedis()` returns (see there).
   */
  client(options?: RedisOptions): Redis;
  /** Calls per command name since the start (INFO commandstats), summed over every primary. */
  commandStats(): Promise<Record<string, number>>;
  /** SIGKILL of every server process: Redis gone without a goodbye. */
  kill(): Promise<void>;
  /** Stops what is left and removes the folders. */
  stop(): Promise<void>;
}

export async function startOwnRedis(): Promise<OwnRedis> {
  return testTopology() === 'cluster' ? startOwnCluster() : startOwnServer();
}

async function startOwnServer(): Promise<OwnRedis> {
  const server = await startLocalRedis();
  return {
    topology: 'standalone',
    connection: server.url,
    client: (options = {}) => new Redis(server.url, { maxRetriesPerRequest: 1, ...options }),
    commandStats: () => commandStats([{ host: '127.0.0.1', port: server.port }]),
    kill: () => server.kill(),
    stop: () => server.stop(),
  };
}

/** No replicas: what the specs using this count or kill is the primaries, and 3 nodes start faster than 6. */
async function startOwnCluster(): Promise<OwnRedis> {
  const cluster = await startLocalRedisCluster({ primaries: 3 });
  return {
    topology: 'cluster',
    connection: { cluster: { nodes: cluster.nodes } },
    client: (options = {}) => {
      const { lazyConnect, ...redisOptions } = options;
      const client = new Cluster(cluster.nodes, {
        lazyConnect,
        redisOptions: { maxRetriesPerRequest: 1, ...redisOptions },
      });
      return client as unknown as Redis;
    },
    commandStats: () => commandStats(cluster.primaries),
    kill: async () => {
      await Promise.all(cluster.nodes.map((node) => cluster.kill(node)));
    },
    stop: () => cluster.stop(),
  };
}

/** INFO commandstats of each server, summed by command name (`evalsha`, `get`, `cluster|slots`...). */
async function commandStats(servers: readonly ClusterNode[]): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  await Promise.all(
    servers.map(async ({ host, port }) => {
      const admin = new Redis({ host, port, maxRetriesPerRequest: 1 });
      try {
        const info = await admin.info('commandstats');
        for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
          calls[match[1]!] = (calls[match[1]!] ?? 0) + Number(match[2]);
        }
      } finally {
        admin.disconnect();
      }
    }),
  );
  return calls;
}
