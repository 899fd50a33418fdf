const FALLBACK = "the cache's announcements go by PUBLISH to every Cluster node (set shardedPubSub: false to say so)";

/**
 * Why a Cluster cannot carry the namespace's announcements by sharded pub/sub, or undefined when it
 * can: ioredis added sharded subscribers in 5.6 (with a `shardedSubscribers` option, false by default:
 * an earlier client's options have no key for it), Redis added SPUBLISH in 7. An unknown Redis
 * version (not reachable yet) is taken to be 7 or later.
 */
export function shardedPubSubRefusal(clusterOptions: object, redisMajor: number | undefined): string | undefined {
  if (!('shardedSubscribers' in clusterOptions)) return `this ioredis has no sharded subscribers (5.6+): ${FALLBACK}`;
  if (redisMajor !== undefined && redisMajor < 7) return `Redis ${redisMajor} has no sharded pub/sub (7+): ${FALLBACK}`;
  return undefined;
}
