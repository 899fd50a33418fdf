const REMEDY = 'set shardedPubSub: false (on every instance sharing the namespace: they must agree)';

/**
 * Why a Cluster cannot carry the namespace's announcements by sharded pub/sub, or undefined when it
 * can: ioredis added sharded subscribers in 5.6 (with a `shardedSubscribers` option, false by default:
 * an earlier client's options have no key for it), Redis added SPUBLISH in 7. An unknown Redis
 * version (not reachable yet) is taken to be the one asked for: its SSUBSCRIBE failing then keeps
 * the instance unsubscribed, which fails safe.
 */
export function shardedPubSubRefusal(clusterOptions: object, redisMajor: number | undefined): string | undefined {
  if (!('shardedSubscribers' in clusterOptions)) return `this ioredis has no sharded subscribers (5.6+): ${REMEDY}`;
  if (redisMajor !== undefined && redisMajor < 7) return `Redis ${redisMajor} has no sharded pub/sub (7+): ${REMEDY}`;
  return undefined;
}
