// Small helpers shared by the integration specs (not a spec itself).
import type { Redis } from 'ioredis';

/** Every key matching `pattern` (a SCAN MATCH glob), sorted. */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/** A promise that resolves after `ms` (used only to make a loader take time, never to wait for Redis). */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Characters a Redis key written by the cache may contain. */
export const SAFE_KEY = /^[A-Za-z0-9:_\-.{}]+$/;
