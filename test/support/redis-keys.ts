// Reading and writing the test Redis's keys the way the specs check them: SCAN (never KEYS) for
// what the cache wrote, the module's own bookkeeping keys, and batches that survive a Cluster. Each
// helper works on a standalone client and on a Cluster (what rawRedis() returns in the cluster project).
import type { Cluster, Redis } from 'ioredis';
import { BookkeepingKeys } from '../../lib/core/bookkeeping-keys.js';
import { TOMBSTONE_KIND } from '../../lib/core/cache-entry.js';
import { isCluster, primariesOf } from './redis-topology.js';

/** Every key matching `pattern` (a SCAN MATCH glob), sorted. On a Cluster, every primary is scanned. */
export async function scanKeys(redis: Redis | Cluster, pattern: string): Promise<string[]> {
  const nodes = isCluster(redis) ? await primariesOf(redis) : [redis];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      keys.push(...found);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys.sort();
}

/**
 * The entries' keys matching `pattern`, sorted: `scanKeys` without the module's own keys
 * (`${namespace}:@...`: the epoch, the prefix markers, tag keys), which every namespace has.
 */
export async function scanEntryKeys(redis: Redis | Cluster, pattern: string): Promise<string[]> {
  return (await scanKeys(redis, pattern)).filter((key) => !/:@/.test(key));
}

/**
 * Whether `key` holds something the cache would serve or wait for (a value, a lease): not absent, and
 * not an eviction's tombstone (a small key an eviction leaves for a minute, store/entry-scripts.ts).
 */
export async function holdsValue(redis: Redis | Cluster, key: string): Promise<boolean> {
  const bytes = await redis.getBuffer(key);
  return bytes !== null && !(bytes[0] === 0xc1 && bytes[1] === TOMBSTONE_KIND);
}

/** The keys matching `pattern` that hold a value (see holdsValue), without the module's own, sorted. */
export async function scanValueKeys(redis: Redis | Cluster, pattern: string): Promise<string[]> {
  const keys = await scanEntryKeys(redis, pattern);
  const held = await Promise.all(keys.map((key) => holdsValue(redis, key)));
  return keys.filter((_, i) => held[i]);
}

/** The module's own keys and channels of `namespace` (for a client without keyPrefix, database 0 unless given). */
export function bookkeeping(namespace: string, scope = { keyPrefix: '', db: 0 }): BookkeepingKeys {
  return new BookkeepingKeys(namespace, scope);
}

/**
 * Publishes `message` where an instance of `namespace` announces on `channel` (the prefix or the tag
 * channel of `bookkeeping`): with `sharded` (an app with `shardedPubSub` on a Cluster) by SPUBLISH on
 * its shard channel (store/shard-channels.ts), else by PUBLISH. For a client without keyPrefix.
 */
export async function publishAnnouncement(
  redis: Redis | Cluster,
  keys: BookkeepingKeys,
  channel: 'prefixChannel' | 'tagChannel',
  message: string,
  { sharded = false } = {},
): Promise<void> {
  if (!sharded || !isCluster(redis)) {
    await redis.publish(keys[channel], message);
    return;
  }
  await redis.spublish(keys.shardChannel(channel === 'prefixChannel' ? 'prefixes' : 'tags'), message);
}

/**
 * `SET key value PX ms` for every key. One pipeline on a server; on a Cluster the keys live on
 * several primaries and a pipeline must stay on one, so the commands go out one by one, in parallel.
 */
export async function setMany(
  redis: Redis | Cluster,
  keys: readonly string[],
  value: string | Buffer,
  ms: number,
): Promise<void> {
  if (isCluster(redis)) {
    await Promise.all(keys.map((key) => redis.set(key, value, 'PX', ms)));
    return;
  }
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.set(key, value, 'PX', ms);
  await pipeline.exec();
}

/** Deletes `keys` one command per key, so keys of different slots never meet in one command (CROSSSLOT). */
export async function delEach(redis: Redis | Cluster, keys: readonly string[]): Promise<void> {
  await Promise.all(keys.map((key) => redis.del(key)));
}

/** Characters a Redis key written by the cache may contain: `#` marks hashed parts, `~` typed ones. */
export const SAFE_KEY = /^[A-Za-z0-9:_\-.{}#~]+$/;
