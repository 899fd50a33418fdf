import type { Removal } from './cache-engine.types.js';
import type { CacheStatus } from './cache-status.js';
import type { ManualOperations } from './manual-operations.js';

/**
 * What the cache answers while it is not running — before `app.init()` started it, after
 * `app.close()` stopped it — in one place. Every call goes to the source and nothing is cached,
 * counted or thrown: a decorated method runs as if undecorated, `get` misses, `getOrSet` runs its
 * loader, writes and invalidations do nothing and resolve to what "nothing done" means. (While it
 * runs, Redis failures are answered by fail-open-store.ts.) Calls that were in flight when the
 * cache stopped finish against STOPPED_ANSWERS.
 */
export const NOT_RUNNING: ManualOperations = Object.freeze({
  get: () => Promise.resolve(undefined),
  getMany: <T>(keys: readonly string[]) => Promise.resolve(keys.map((): T | undefined => undefined)),
  set: () => Promise.resolve(),
  del: () => Promise.resolve(0),
  getOrSet: <T>(_key: string, loader: () => Promise<T>) => loader(),
  invalidateTags: () => Promise.resolve(),
  clear: () => Promise.resolve(0),
  reclaim: () => Promise.resolve(0),
});

/** `CacheService.status()` while the cache is not running. */
export const NOT_RUNNING_STATUS: CacheStatus = Object.freeze({
  running: false,
  redis: 'down',
  subscribed: false,
  l1: 'off',
  pendingInvalidations: 0,
});

/** A decorated method's call while the cache is not running: the method itself, uncached and uncounted. */
export function callUncached(instance: object, original: (...args: unknown[]) => unknown, args: unknown[]): unknown {
  return original.apply(instance, args);
}

/**
 * The engine's answers to calls still in flight when the cache stopped (app.close() mid-call): its
 * store and parts are gone, so a read misses, a write is not made, an invalidation has nothing left
 * to invalidate; none of it is a failure of Redis, so none is counted.
 */
export const STOPPED_ANSWERS = Object.freeze({
  read: Object.freeze({ found: false, failed: false }),
  /** `write`: true, "stored or deliberately not", so the caller counts no error. */
  written: true,
  removal: Object.freeze({ removed: 0, failed: false }) as Removal,
  invalidation: Object.freeze({ failed: false }),
  epoch: undefined,
  /** Nothing answers: no point taking leases or writing. */
  isDown: true,
});
