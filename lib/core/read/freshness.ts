import type { DecodedEntry } from '../cache-entry.js';

/** The windows of a read: the parts of LoadPolicy that decide what an entry may answer. */
export interface FreshnessPolicy {
  /** XFetch's beta; 0 when early refresh is off. */
  readonly earlyRefreshBeta: number;
  readonly staleWhileRevalidateMs: number;
  readonly graceMs: number;
}

/** `CacheService.get`'s windows: only a fresh entry answers. */
export const FRESH_ONLY: FreshnessPolicy = Object.freeze({
  earlyRefreshBeta: 0,
  staleWhileRevalidateMs: 0,
  graceMs: 0,
});

/**
 * What an entry may do for a read:
 * - `fresh`: answer (a hit);
 * - `refresh`: answer, and refresh it in the background now (XFetch chose this read);
 * - `stale`: past its TTL but within `staleWhileRevalidate`: answer (stale) and refresh it;
 * - `grace`: not an answer, but the fallback if the load fails or passes `timeout`;
 * - `expired`: nothing (absent, invalidated, or past every window).
 */
export type Freshness = 'fresh' | 'refresh' | 'stale' | 'grace' | 'expired';

/**
 * The one place that decides what an entry read from Redis may answer. An invalidated entry (a tag
 * or cleared prefix newer than its load) answers nothing, not even as a fallback. `random` is
 * XFetch's draw, a parameter so tests can fix it.
 */
export function freshnessOf(
  entry: DecodedEntry | undefined,
  policy: FreshnessPolicy,
  now = Date.now(),
  random = Math.random,
): Freshness {
  if (entry === undefined || entry.invalidated) return 'expired';
  const { freshUntil } = entry;
  if (now < freshUntil) {
    const beta = policy.earlyRefreshBeta;
    // XFetch: the closer to expiry and the slower the last load, the likelier an early refresh.
    return beta > 0 && now - entry.loadMs * beta * Math.log(random()) >= freshUntil ? 'refresh' : 'fresh';
  }
  if (now < freshUntil + policy.staleWhileRevalidateMs) return 'stale';
  return now < freshUntil + policy.graceMs ? 'grace' : 'expired';
}
