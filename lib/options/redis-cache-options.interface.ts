import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { DurationString } from './duration.js';

/** A TTL: seconds as a number, a duration string (`'90s'`, `'5m'`), or a name from `ttlProfiles`. */
export type TtlOption = number | DurationString | (string & {});

/**
 * An in-process tier (L1) in front of Redis: the most recently used values, kept in this process's
 * memory (lru-cache) and served without a round trip. Every instance drops its copy when another
 * one writes, evicts, invalidates a tag or clears a prefix (published on Redis), so a value changed
 * anywhere is not served from memory once the message has arrived (measured: docs/l1-coherence.md).
 * Values in L1 are shared between callers: treat them as read-only.
 */
export interface L1Options {
  /** How many values are kept (least recently used go first). */
  max: number;
  /**
   * The longest a value is kept in memory (and so served without asking Redis): seconds or a
   * duration. Never past the value's own TTL. It also bounds how long a change made outside the
   * module (a `DEL` from redis-cli, a maxmemory eviction), which nothing announces, goes unseen.
   */
  ttl: number | DurationString;
}

/**
 * How large values are compressed (`node:zlib`) before they are stored; see the module's
 * `compression` option. Every instance reads every algorithm its Node has, whatever its own setting.
 *
 * @example
 * compression: { algorithm: 'gzip', threshold: 16_384 } // values of 16 KiB or more, encoded
 */
export interface CompressionOptions {
  /**
   * `'gzip'`, `'brotli'`, or `'zstd'` where the running Node's `node:zlib` has it (Node 22.15+ or
   * 23.8+, experimental there); a Node without it is a bootstrap error. Default `'gzip'`.
   */
  algorithm?: 'gzip' | 'brotli' | 'zstd';
  /**
   * Values whose encoded form (MessagePack) is at least this many bytes are compressed; smaller ones
   * are stored as they are. Default `16384` (16 KiB).
   */
  threshold?: number;
  /**
   * The algorithm's level: gzip 1-9 (default 4: half the time of zlib's default 6 for about one point
   * of size), brotli quality 0-11 (default 5: brotli's own default, 11, is about 50x slower, far too
   * slow for a cache), zstd 1-19 (default 3, zstd's own).
   */
  level?: number;
}

/** Connect to a Redis Cluster: the seed nodes and ioredis cluster options. */
export interface RedisClusterConnection {
  cluster: { nodes: ClusterNode[]; options?: ClusterOptions };
}

/**
 * Where the cache's Redis is:
 * - a URL (`redis://user:pass@host:6379/0`, `rediss://` for TLS),
 * - ioredis `RedisOptions` (Sentinel included: `{ sentinels, name }`),
 * - `{ cluster: { nodes, options } }`,
 * - or an existing ioredis `Redis` / `Cluster` instance, which the module uses but never closes.
 */
export type RedisConnectionOption = string | RedisOptions | RedisClusterConnection | Redis | Cluster;

/**
 * Options of `RedisCacheModule.forRoot()` / `forRootAsync()`. All are optional.
 *
 * @example
 * RedisCacheModule.forRoot({
 *   redis: process.env.REDIS_URL,
 *   namespace: 'shop',
 *   ttl: '1h',
 *   ttlProfiles: { user_profile: '24h', trending: '5m', static: '7d' },
 * })
 */
export interface RedisCacheModuleOptions {
  /**
   * The name of this cache, for an app with several (each its own Redis, namespace and options):
   * decorators choose it with `cache: 'sessions'`, services inject it with `@InjectCache('sessions')`.
   * Default: the default cache, which `CacheService` injects and decorators use without `cache`.
   * With `forRootAsync`, give it beside the factory (`forRootAsync({ name, useFactory })`).
   */
  name?: string;
  /** The Redis to use. Default: `process.env.REDIS_URL`, else `redis://127.0.0.1:6379`. */
  redis?: RedisConnectionOption;
  /** Prefix of every key the module writes (`${namespace}:${key}`). Default `'cache'`. */
  namespace?: string;
  /** Default TTL: seconds, or a duration string. Must be positive and finite. Default `3600`. */
  ttl?: number | DurationString;
  /** Named TTLs a decorator can refer to: `ttl: 'user_profile'`. Values: seconds or duration strings. */
  ttlProfiles?: Record<string, number | DurationString>;
  /** Written TTLs are drawn uniformly from `[ttl, ttl * (1 + jitter)]`. 0 disables. Default `0.1`. */
  jitter?: number;
  /** TTL of cached `null`/`undefined` results (negative caching): seconds or a duration. Default `60`. */
  nullTtl?: number | DurationString;
  /** Milliseconds (or a duration) after which a cache command is abandoned and the call goes to the source. Default `250`. */
  commandTimeout?: number | DurationString;
  /**
   * Default of `@Cacheable`/`getOrSet`'s `lock`: one load per cold key across every process sharing
   * the Redis, the other callers waiting for its value. Default `true`.
   */
  lock?: boolean;
  /** Default lease length of a load: seconds or a duration. Default `10`. */
  lockTtl?: number | DurationString;
  /** Default time a caller waits for another process's load: milliseconds or a duration. Default `5000`. */
  lockWait?: number | DurationString;
  /**
   * An in-process tier for every `@Cacheable` method and `getOrSet` call (a method opts out with
   * `l1: false`). Off by default; see `L1Options`.
   */
  l1?: L1Options;
  /**
   * Deep-freeze the values a decorated read hands out: one load's value goes to every caller that
   * joined it (single-flight), and an in-process tier hands the same object to every hit, so a
   * caller that mutates it changes what the others get. Frozen, such a mutation throws a TypeError
   * (in strict mode, as TypeScript emits) instead. The method's own return value is frozen too, on a
   * miss. Plain objects and arrays are frozen; Maps, Sets, Dates and bytes cannot be. Default `false`.
   */
  freezeShared?: boolean;
  /**
   * Compress large values before they are stored, marked in the entry so every reader knows; read
   * back transparently. `true` uses the defaults of `CompressionOptions`. A compressed value is kept
   * only when it is smaller. An instance of an earlier release reads a compressed entry as a miss, so
   * turn it on once every instance sharing the namespace runs a release that has it. Default `false`.
   *
   * @example
   * compression: { algorithm: 'brotli', threshold: 16_384, level: 5 }
   */
  compression?: boolean | CompressionOptions;
  /**
   * On a Redis Cluster of Redis 7 or later, with ioredis 5.6 or later: cleared prefixes, tag
   * invalidations and lease releases go by sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), relayed by one
   * shard (the namespace's slot's, or the key's) instead of a `PUBLISH` every node of the cluster
   * relays. Every instance sharing the namespace must set the same value: one that announces by
   * `SPUBLISH` is not heard by one that listens classically. An ioredis or a Redis that cannot fails
   * the bootstrap. No effect on a standalone server or Sentinel. Default `false`.
   */
  shardedPubSub?: boolean;
  /** Register the providers globally so decorated classes in every module reach the cache. Default `true`. */
  isGlobal?: boolean;
  /**
   * Checks of the Redis the cache runs on, once after it connected, logged as warnings (logger
   * context `RedisCacheAdvisor`): `maxmemory` (none set: Redis grows without bound), `evictionPolicy`
   * (`noeviction`, which fails writes once Redis is full, or a `volatile-*` policy while keys of the
   * namespace have no TTL) and `keysWithoutTtl` (keys of the namespace without a TTL, in a sample of
   * at most 1,000). They read INFO memory and a bounded SCAN, never delay or fail the bootstrap, and
   * skip silently what the Redis user may not run; RedisCacheTestingModule runs none. `false` turns
   * them all off; an object turns single checks off. Default: all on. The full audit is the
   * `nestjs-redis-cache audit` command (docs/audit.md).
   *
   * @example
   * startupAdvisor: { maxmemory: false } // a development Redis without a memory limit
   */
  startupAdvisor?: boolean | { maxmemory?: boolean; evictionPolicy?: boolean; keysWithoutTtl?: boolean };
}
