import type { CacheOutcome } from '../metrics/cache-outcome.js';
import type { DecodedEntry, EntryRead } from './cache-entry.js';
import type { ReturnMode } from './cache-method-plan.js';

/** How one value is written: its TTL, negative caching, and the veto of `unless`. */
export interface WritePolicy {
  ttlMs: number;
  /**
   * How long the key outlives `ttlMs` so readers with `staleWhileRevalidate` or `grace` can still
   * serve it: the larger of the two. Default 0.
   */
  retainMs?: number;
  /** Store `null`/`undefined` (with `nullTtl`). Default true. */
  cacheNull?: boolean;
  /** When it returns true the value is returned but not stored. */
  unless?: (value: unknown) => boolean;
  /**
   * The value's tags (a string or strings; see cache-tags.ts). When set, the invalidation epoch is
   * read before the value is loaded, and passed to `prepare`/`write`.
   */
  tagsOf?: (value: unknown) => unknown;
  /**
   * What the method that produced the value returned, stored with the entry for readers whose
   * method's return type was not recorded (cache-entry.ts RETURNED_FLAGS). Read when the entry is
   * prepared, after the method ran. Undefined: not recorded.
   */
  returned?: () => ReturnMode | undefined;
}

/** What a delete or clear did. */
export interface Removal {
  removed: number;
  /** The cache failed (and the failure was counted): `removed` is then 0. */
  failed: boolean;
}

export interface LoadResult<T> {
  value: T;
  outcome: Extract<CacheOutcome, 'hit' | 'miss' | 'stale' | 'error'>;
  /** A grace value answered because the method failed or passed `timeout` (counted in `fallbacks`). */
  fallback?: boolean;
  /** A hit: the fresh, checked entry read from Redis (what the in-process tier may keep). */
  fresh?: DecodedEntry;
}

/** A value as read from Redis, with what freshness and refreshes need. */
export type CachedValue = DecodedEntry;
export type { EntryRead };

/** An entry ready to store: its bytes and the key's PX. */
export interface PreparedEntry {
  bytes: Buffer;
  pxMs: number;
}

/** Why `prepare` stores nothing: on purpose, the value cannot be stored, or a tag was invalidated meanwhile. */
export type NotStored = 'skip' | 'failed' | 'invalidated';
