export interface LocalRedisClusterNode {
  readonly host: string;
  readonly port: number;
}

export interface LocalRedisCluster {
  /** Every node, primaries and replicas, in the order they were started: seed nodes for a client. */
  readonly nodes: LocalRedisClusterNode[];
  /** The nodes that serve slots, sorted by port. */
  readonly primaries: LocalRedisClusterNode[];
  /** The replica nodes (empty unless `replicasPerPrimary` > 0), sorted by port. */
  readonly replicas: LocalRedisClusterNode[];
  /** The redis-server process ids, to check that none is left after `stop()`. */
  readonly pids: number[];
  /** SIGKILLs one node (a crash: no shutdown, no failover handshake) and waits until it has exited. */
  kill(node: LocalRedisClusterNode): Promise<void>;
  /** Stops every node (SIGTERM, SIGKILL after 3 s) and removes the cluster's folders. Idempotent. */
  stop(): Promise<void>;
}

export interface StartLocalRedisClusterOptions {
  /** Nodes that serve slots; default 3 (the least `redis-cli --cluster create` accepts). */
  primaries?: number;
  /** Replicas of each primary; default 0. */
  replicasPerPrimary?: number;
  /** How long to wait for the cluster to be created and healthy on every node; default 20 s. */
  readyTimeoutMs?: number;
}

export declare const REDIS_CLI_INSTALL_HINT: string;
/**
 * Starts `primaries × (1 + replicasPerPrimary)` cluster-enabled redis-servers on free loopback ports,
 * joins them with `redis-cli --cluster create`, and resolves once every node reports the cluster
 * healthy with all 16384 slots served.
 *
 * @example
 * const cluster = await startLocalRedisCluster({ primaries: 3 });
 * const client = new Cluster(cluster.nodes);
 * // ...
 * await client.quit();
 * await cluster.stop();
 */
export declare function startLocalRedisCluster(options?: StartLocalRedisClusterOptions): Promise<LocalRedisCluster>;
