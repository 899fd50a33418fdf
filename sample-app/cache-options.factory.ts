import type { RedisCacheModuleOptions } from 'nestjs-redis-cache';
import type { SampleAppConfig } from './config/sample-app-config.js';

/**
 * How long each kind of data may be served from the cache. Decorators name a profile
 * (`ttl: 'user_profile'`) instead of repeating numbers, so a policy changes in one place.
 */
export const TTL_PROFILES = {
  /** Profiles change rarely, and every change writes through (`@CachePut`). */
  user_profile: '24h',
  /** Feeds and comment threads: evicted on every write, the TTL only bounds drift from outside writes. */
  user_feed: '1h',
  /** Recomputed often enough to feel live. */
  trending: '5m',
  /** Immutable data: posts never change, and deleting one evicts it. */
  static: '7d',
} as const;

/** The `RedisCacheModule.forRootAsync` factory: cache settings derived from the app's config. */
export function cacheOptionsFactory(config: SampleAppConfig): RedisCacheModuleOptions {
  return {
    redis: config.redisClusterNodes ? { cluster: { nodes: [...config.redisClusterNodes] } } : config.redisUrl,
    namespace: config.cacheNamespace,
    ttl: '1h',
    ttlProfiles: TTL_PROFILES,
    // "No such user" is cached briefly: long enough to absorb probing, short enough not to matter.
    nullTtl: '1m',
  };
}
