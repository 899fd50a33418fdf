import type { DurationString } from '../options/duration.js';

/** Options of `RedisCacheHealthIndicator.isHealthy`. */
export interface RedisCacheHealthOptions {
  /**
   * The cache to check, by the `name` it was registered with (`RedisCacheModule.forRoot({ name })`).
   * Default: the cache registered without a name.
   */
  cache?: string;
  /**
   * Whether the app needs this Redis to do its job. `false` (default): when Redis does not answer the
   * check stays `up`, with `state: 'degraded'`, because the app still serves (uncached) and restarting
   * it would not bring Redis back. `true`: the check is `down`, and the health endpoint answers 503.
   */
  required?: boolean;
  /**
   * How long to wait for Redis to answer PING: milliseconds (a number) or a duration (`'500ms'`,
   * `'2s'`). Past it Redis counts as not answering. Default 1000 ms.
   */
  timeout?: number | DurationString;
}

/** What the cache's Redis looks like to the check: `degraded` means the app serves without the cache. */
export type RedisCacheHealthState = 'up' | 'degraded' | 'down';

/**
 * The details of a check, beside terminus's own `status`. A type rather than an interface: terminus
 * takes details as a `Record<string, unknown>`, which an interface is not assignable to.
 */
export type RedisCacheHealthDetails = {
  /** `up`: Redis answered; `degraded`: it did not, the app serves uncached; `down`: it did not, and it is `required`. */
  state: RedisCacheHealthState;
  /** The cache checked: its registration's `name`, `'default'` for the one without a name. */
  cache: string;
  /** How long Redis took to answer PING, in milliseconds; absent when it did not answer. */
  latencyMs?: number;
  /** Why Redis counts as not answering; absent when it answered. Never contains a password. */
  message?: string;
  /**
   * Whether this instance's subscription is live (`CacheService.status().subscribed`). `false` while
   * Redis answers means lease waiters poll and the in-process tier serves nothing: a SUBSCRIBE the
   * server refuses (ACL), or a subscription being re-established. Reported beside `state`, which says
   * only whether Redis answers PING.
   */
  subscribed: boolean;
  /** The in-process tier (`CacheService.status().l1`): `'off'` when no method uses `l1`. */
  l1: 'off' | 'waiting' | 'serving';
  /** Invalidations (deletes, tags, prefixes) an outage held back, replayed once Redis answers (`CacheService.status()`). */
  pendingInvalidations: number;
};
