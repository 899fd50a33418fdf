import { RedisCacheConfigError } from '../errors.js';
import type { CacheLoadOptions, CacheRetentionOptions } from './cache-load-options.interface.js';
import { toMilliseconds } from './duration.js';
import type { ResolvedCacheConfig } from './resolve-options.js';

/** A read-through's `CacheLoadOptions` after defaults and unit conversion (all in milliseconds). */
export interface LoadPolicy {
  readonly lock: boolean;
  readonly lockTtlMs: number;
  readonly lockWaitMs: number;
  /** XFetch's beta; 0 when early refresh is off. */
  readonly earlyRefreshBeta: number;
  readonly staleWhileRevalidateMs: number;
  readonly graceMs: number;
  /** Undefined: no soft limit. */
  readonly timeoutMs: number | undefined;
}

/**
 * Resolves `CacheLoadOptions` against the module's defaults. Throws `RedisCacheConfigError` naming
 * `where` (`'UsersService.findOne @Cacheable'`) and the option, at bootstrap for decorators.
 */
export function resolveLoadPolicy(options: CacheLoadOptions, config: ResolvedCacheConfig, where: string): LoadPolicy {
  if (options.lock !== undefined && typeof options.lock !== 'boolean') {
    throw new RedisCacheConfigError(`${where}: lock must be true or false (got ${String(options.lock)})`);
  }
  const beta = options.earlyRefresh === true ? 1 : options.earlyRefresh === false ? 0 : options.earlyRefresh;
  if (beta !== undefined && (typeof beta !== 'number' || !Number.isFinite(beta) || beta < 0)) {
    throw new RedisCacheConfigError(
      `${where}: earlyRefresh must be true, false or a beta >= 0 such as 1 (got ${String(options.earlyRefresh)})`,
    );
  }
  return {
    lock: options.lock ?? config.lock,
    lockTtlMs: duration(options.lockTtl, 's', 'positive', `${where}: lockTtl`) ?? config.lockTtlMs,
    lockWaitMs: duration(options.lockWait, 'ms', 'non-negative', `${where}: lockWait`) ?? config.lockWaitMs,
    earlyRefreshBeta: beta ?? 0,
    ...resolveRetention(options, where),
    timeoutMs: duration(options.timeout, 'ms', 'positive', `${where}: timeout`),
  };
}

/** `staleWhileRevalidate` and `grace` in milliseconds (0 when absent). */
export function resolveRetention(
  options: CacheRetentionOptions,
  where: string,
): { staleWhileRevalidateMs: number; graceMs: number } {
  return {
    staleWhileRevalidateMs:
      duration(options.staleWhileRevalidate, 's', 'non-negative', `${where}: staleWhileRevalidate`) ?? 0,
    graceMs: duration(options.grace, 's', 'non-negative', `${where}: grace`) ?? 0,
  };
}

/**
 * A duration option in ms, `undefined` when absent; throws naming `what` when it is not a finite
 * number (of `unit` when bare) or a duration string within `range`.
 */
export function duration(
  value: unknown,
  unit: 's' | 'ms',
  range: 'positive' | 'non-negative',
  what: string,
): number | undefined {
  if (value === undefined) return undefined;
  const ms = toMilliseconds(value, unit);
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || (range === 'positive' && ms === 0)) {
    const noun = unit === 's' ? 'seconds' : 'milliseconds';
    throw new RedisCacheConfigError(
      `${what} must be a ${range}, finite number of ${noun} or a duration like '${unit === 's' ? '30s' : '500ms'}' ` +
        `(got ${typeof value === 'string' ? `'${value}'` : String(value)})`,
    );
  }
  return ms;
}
