// Global setup of the `integration-cluster` jest project: one throwaway Redis Cluster of 3 primaries
// and 3 replicas for the whole run (unless REDIS_CLUSTER_NODES names an existing one), published to
// the test workers as TEST_REDIS_CLUSTER_NODES (`host:port,host:port,...`). Which project a test
// file belongs to is told by cluster-topology.setup.mjs, not here: workers are shared by projects.
// Plain ESM, like global-setup.mjs: Jest loads global setup outside its module mapper.
import { startLocalRedisCluster } from '../../tools/local-redis-cluster.mjs';

export default async function clusterGlobalSetup() {
  if (process.env.REDIS_CLUSTER_NODES) {
    process.env.TEST_REDIS_CLUSTER_NODES = process.env.REDIS_CLUSTER_NODES;
    return;
  }
  // Replicas, so the suite runs on the topology a production cluster has (and reads, MOVED
  // redirections and pub/sub cross nodes that hold no slots).
  const cluster = await startLocalRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
  globalThis.__REDIS_CLUSTER__ = cluster;
  process.env.TEST_REDIS_CLUSTER_NODES = cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',');
}
