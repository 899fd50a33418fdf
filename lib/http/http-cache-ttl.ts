import { RedisCacheConfigError } from '../errors.js';
import { isDurationString, toPositiveMilliseconds } from '../options/duration.js';
import type { TtlOption } from '../options/redis-cache-options.interface.js';

/**
 * Checks the form of an HTTP cache TTL where it is written (`@CacheTTL`, `HttpCacheOptions.ttl`): a
 * positive finite number of seconds, a duration string, or a non-empty profile name. Whether a profile
 * exists is only known once the module is configured: an unknown one is reported when the first
 * response of the route would be stored (see HttpCacheInterceptor).
 */
export function checkHttpCacheTtl(ttl: unknown, where: string): TtlOption {
  if (typeof ttl === 'number' && toPositiveMilliseconds(ttl, 's') !== undefined) return ttl;
  if (typeof ttl === 'string' && ttl.trim().length > 0) {
    if (!/^\s*\d/.test(ttl) || isDurationString(ttl)) return ttl;
  }
  throw new RedisCacheConfigError(
    `${where} must be a positive, finite number of seconds, a duration like '5m' or a ttlProfiles name ` +
      `(got ${typeof ttl === 'string' ? `'${ttl}'` : String(ttl)})`,
  );
}
