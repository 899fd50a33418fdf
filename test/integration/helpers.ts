// Small helpers shared by the integration specs (not a spec itself). Each works on a standalone
// client and on a Cluster (what rawRedis() returns in the cluster project).
import type { Cluster, Redis } from 'ioredis';
import { isCluster, primariesOf } from '../support/redis-topology.js';

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
 * `SET key value PX ms` for every key. One pipeline on a server; on a Cluster the keys live on
 * several primaries and a pipeline must stay on one, so the commands go out one by one, in parallel.
 */
export async function setMany(
  redis: Redis | Cluster,
  keys: readonly string[],
  value: string,
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

/** A promise that resolves after `ms` (used only to make a loader take time, never to wait for Redis). */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Characters a Redis key written by the cache may contain. */
export const SAFE_KEY = /^[A-Za-z0-9:_\-.{}]+$/;

/** Those of `pids` whose process still exists (signal 0 only asks). */
export function stillRunning(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}
