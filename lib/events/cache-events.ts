import type { CacheOutcome } from '../metrics/cache-outcome.js';

/**
 * The `node:diagnostics_channel` channels the cache publishes on. Subscribe with
 * `diagnostics_channel.subscribe(CACHE_CHANNELS.call, listener)`; nothing is built or published while
 * a channel has no subscriber. Every message names the cache (`cache`: the registration's name,
 * `'default'` for the default one) and its `namespace`, so two caches or two apps in one process can be
 * told apart. Messages are plain objects owned by the listener; keys are the Redis keys as built
 * (user input in them is hashed when long or unusual, but a short id is not: keep keys out of metric
 * labels and out of traces you ship elsewhere unless you mean to).
 */
export const CACHE_CHANNELS = Object.freeze({
  /** A cached call finished (`@Cacheable`, `getOrSet`, a method with `@CachePut`/`@CacheEvict` only): CacheCallEvent. */
  call: 'nestjs-redis-cache:call',
  /** The method (or loader) starts running for the cache: CacheLoadStartEvent. */
  loadStart: 'nestjs-redis-cache:load:start',
  /** The method (or loader) finished, or threw: CacheLoadEndEvent. */
  loadEnd: 'nestjs-redis-cache:load:end',
  /** A caller waited for another caller's load of the key (the lease): CacheLeaseWaitEvent. */
  leaseWait: 'nestjs-redis-cache:lease-wait',
  /** A cache operation failed and the call went on without it (fail open): CacheErrorEvent. */
  error: 'nestjs-redis-cache:error',
  /** Keys deleted, tags invalidated, a prefix cleared or reclaimed: CacheInvalidationEvent. */
  invalidation: 'nestjs-redis-cache:invalidation',
  /** Values dropped from the in-process tier (L1): CacheL1DropEvent. */
  l1Drop: 'nestjs-redis-cache:l1:drop',
  /** Redis became unreachable, or reachable again: CacheConnectionEvent. */
  connection: 'nestjs-redis-cache:connection',
  /** An HTTP request whose handler made cached calls finished (CacheMetricsInterceptor): CacheRouteEvent. */
  route: 'nestjs-redis-cache:route',
} as const);

export type CacheChannel = (typeof CACHE_CHANNELS)[keyof typeof CACHE_CHANNELS];

/** What every message carries: which cache it is about. */
export interface CacheEventSource {
  /** The registration's name: `'default'`, or the `name` given to `forRoot`. */
  cache: string;
  /** The cache's namespace (the prefix of its keys). */
  namespace: string;
}

/**
 * Where a call's answer came from: `l1` the in-process tier, `redis` a read of Redis (hit, stale, or a
 * miss that loaded), `source` the method alone (the cache was not read: bypass, not started, a
 * method with only `@CachePut`/`@CacheEvict`).
 */
export type CacheTier = 'l1' | 'redis' | 'source';

export interface CacheCallEvent extends CacheEventSource {
  /** The metrics name: `Class.method`, the decorator's `name`, or `getOrSet`'s `name`. */
  name: string;
  /** `read` for a read-through (`@Cacheable`, `getOrSet`), `write` for a method with only writes or evictions. */
  operation: 'read' | 'write';
  outcome: CacheOutcome;
  tier: CacheTier;
  /** From the call to its answer; 0 for an L1 hit (the clock is not read for those). */
  durationMs: number;
  /** When the call began, ms since the epoch on the wall clock (`Date.now() - durationMs`), for back-dated spans. */
  startTime: number;
  /** A value within `grace` answered because the method threw or passed `timeout`. */
  fallback: boolean;
  /** The Redis key, when the call had one. */
  key: string | undefined;
}

export interface CacheLoadStartEvent extends CacheEventSource {
  name: string;
  key: string;
  /** A refresh of a value still served (stale-while-revalidate, early refresh), nobody waiting for it. */
  background: boolean;
}

export interface CacheLoadEndEvent extends CacheLoadStartEvent {
  durationMs: number;
  /** The method threw (its error reached the caller, or a grace value answered instead). */
  failed: boolean;
}

export interface CacheLeaseWaitEvent extends CacheEventSource {
  name: string;
  key: string;
  durationMs: number;
  /**
   * How the wait ended: `value` the holder's value was read, `empty` the holder stored nothing or its
   * lease ended without a value (so this caller ran the method), `timeout` `lockWait` (or `timeout`)
   * ran out. One event per wait, however many wake-ups it took (`durationMs` is their sum); a wait
   * cut short by a cache failure or the app closing publishes none.
   */
  result: 'value' | 'empty' | 'timeout';
}

/**
 * What failed: `read` a GET (or the check of its tags or cleared prefixes), `write` a value's write
 * (or the admission of its tags), `delete` an eviction or reclaim, `lease` taking, completing or
 * giving back a load's lease, `invalidate` a tag invalidation or a prefix clear, `epoch` the
 * invalidation epoch a tagged value needs, `decode` a payload that cannot be read (it is deleted),
 * `encode` a value that cannot be stored, `key` a key, keys, tags or `unless` function of the user's
 * that threw, `foreign` a key holding something the cache did not write.
 */
export type CacheErrorOperation =
  'read' | 'write' | 'delete' | 'lease' | 'invalidate' | 'epoch' | 'decode' | 'encode' | 'key' | 'foreign';

export interface CacheErrorEvent extends CacheEventSource {
  name: string;
  operation: CacheErrorOperation;
  /** The Redis key, when the operation had one. */
  key: string | undefined;
  /** What was thrown (for `foreign`, undefined: the key holds something the cache did not write). */
  error: unknown;
}

export interface CacheInvalidationEvent extends CacheEventSource {
  name: string;
  kind: 'keys' | 'tags' | 'prefix' | 'reclaim';
  /** Keys deleted (`keys`, `reclaim`), tags invalidated (`tags`), 1 for a prefix. */
  count: number;
  /** Redis failed: the invalidation is replayed once it answers again. */
  failed: boolean;
}

export interface CacheL1DropEvent extends CacheEventSource {
  /**
   * Why: `message` another instance changed the key, tag or prefix; `local` this instance wrote or
   * evicted it; `resync` the subscription was down, so nothing in L1 could be trusted.
   */
  reason: 'message' | 'local' | 'resync';
  /** How many values were dropped (for a tag or prefix: all the tier held under it). */
  count: number;
}

export interface CacheConnectionEvent extends CacheEventSource {
  state: 'down' | 'up';
  /** Why it went down (redacted: never a password). */
  reason: string | undefined;
}

export interface CacheRouteEvent {
  /** `GET /users/:id`. */
  route: string;
  outcome: CacheOutcome;
  durationMs: number;
}
