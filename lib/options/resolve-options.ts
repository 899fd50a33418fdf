import { RedisCacheConfigError } from '../errors.js';
import { CACHE_DEFAULTS } from './cache-defaults.js';
import type { L1Settings } from '../core/l1/l1-slot.js';
import { isDurationString, toMilliseconds, toPositiveMilliseconds } from './duration.js';
import { redactSecrets } from '../store/connection-problems.js';
import type { CompressionSettings } from '../serialization/payload-compression.js';
import { resolveCompression } from './resolve-compression-options.js';
import { resolveModuleL1 } from './resolve-l1-options.js';
import type { RedisCacheModuleOptions, RedisConnectionOption, TtlOption } from './redis-cache-options.interface.js';

/** Module options after defaults, unit conversion and validation. Durations are in milliseconds. */
export interface ResolvedCacheConfig {
  readonly redis: RedisConnectionOption;
  readonly namespace: string;
  readonly ttlMs: number;
  readonly ttlProfiles: ReadonlyMap<string, number>;
  readonly jitter: number;
  readonly nullTtlMs: number;
  readonly commandTimeoutMs: number;
  readonly lock: boolean;
  readonly lockTtlMs: number;
  readonly lockWaitMs: number;
  /** The module's in-process tier; undefined when off. */
  readonly l1: L1Settings | undefined;
  /** Deep-freeze values handed to several callers (see the option). */
  readonly freezeShared: boolean;
  /** How large payloads are compressed; undefined when off. */
  readonly compression: CompressionSettings | undefined;
  /** Announcements by sharded pub/sub on a Redis 7+ Cluster (see the option). */
  readonly shardedPubSub: boolean;
}

/**
 * Applies defaults and validates every option. Throws one `RedisCacheConfigError` listing every
 * problem, each naming the option, so a bad configuration is fixed in one round.
 */
export function resolveCacheOptions(options: RedisCacheModuleOptions = {}): ResolvedCacheConfig {
  const problems: string[] = [];
  const keep = (name: string, value: unknown, fallbackSeconds: number): number => {
    if (value === undefined) return fallbackSeconds * 1_000;
    const ms = toPositiveMilliseconds(value, 's');
    if (ms === undefined) {
      problems.push(
        `${name} must be a positive, finite number of seconds or a duration like '90s' (got ${show(value)})`,
      );
      return fallbackSeconds * 1_000;
    }
    return ms;
  };

  const namespace = options.namespace ?? CACHE_DEFAULTS.namespace;
  const namespaceProblem = checkNamespace(namespace);
  if (namespaceProblem) problems.push(`namespace ${namespaceProblem} (got ${show(namespace)})`);

  const ttlMs = keep('ttl', options.ttl, CACHE_DEFAULTS.ttlSeconds);
  const nullTtlMs = keep('nullTtl', options.nullTtl, CACHE_DEFAULTS.nullTtlSeconds);

  let commandTimeoutMs: number = CACHE_DEFAULTS.commandTimeoutMs;
  if (options.commandTimeout !== undefined) {
    const ms = toPositiveMilliseconds(options.commandTimeout, 'ms');
    if (ms === undefined) {
      problems.push(
        `commandTimeout must be a positive number of milliseconds or a duration like '250ms' (got ${show(options.commandTimeout)})`,
      );
    } else commandTimeoutMs = ms;
  }

  if (options.lock !== undefined && typeof options.lock !== 'boolean') {
    problems.push(`lock must be true or false (got ${show(options.lock)})`);
  }
  const lockTtlMs = keep('lockTtl', options.lockTtl, CACHE_DEFAULTS.lockTtlSeconds);
  let lockWaitMs: number = CACHE_DEFAULTS.lockWaitMs;
  if (options.lockWait !== undefined) {
    const ms = toMilliseconds(options.lockWait, 'ms');
    if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
      problems.push(
        `lockWait must be a non-negative number of milliseconds or a duration like '2s' (got ${show(options.lockWait)})`,
      );
    } else lockWaitMs = ms;
  }

  const jitter = options.jitter ?? CACHE_DEFAULTS.jitter;
  if (typeof jitter !== 'number' || !Number.isFinite(jitter) || jitter < 0) {
    problems.push(`jitter must be a finite number >= 0, e.g. 0.1 for up to +10% (got ${show(jitter)})`);
  }

  const ttlProfiles = new Map<string, number>();
  if (options.ttlProfiles !== undefined && (typeof options.ttlProfiles !== 'object' || options.ttlProfiles === null)) {
    problems.push(`ttlProfiles must be an object of name -> TTL (got ${show(options.ttlProfiles)})`);
  } else {
    for (const [name, value] of Object.entries(options.ttlProfiles ?? {})) {
      if (isDurationString(name)) {
        problems.push(
          `ttlProfiles.${name}: a profile name must not parse as a duration (rename it, e.g. '${name}_ttl')`,
        );
        continue;
      }
      ttlProfiles.set(name, keep(`ttlProfiles.${name}`, value, CACHE_DEFAULTS.ttlSeconds));
    }
  }

  const l1 = resolveModuleL1(options.l1, problems);
  if (options.freezeShared !== undefined && typeof options.freezeShared !== 'boolean') {
    problems.push(`freezeShared must be true or false (got ${show(options.freezeShared)})`);
  }
  if (options.shardedPubSub !== undefined && typeof options.shardedPubSub !== 'boolean') {
    problems.push(`shardedPubSub must be true or false (got ${show(options.shardedPubSub)})`);
  }

  const compression = resolveCompression(options.compression, problems);

  const advisorProblem = checkStartupAdvisor(options.startupAdvisor);
  if (advisorProblem) problems.push(advisorProblem);

  const redis = options.redis ?? process.env.REDIS_URL ?? CACHE_DEFAULTS.redisUrl;
  if (typeof redis !== 'string' && (typeof redis !== 'object' || redis === null)) {
    problems.push(
      `redis must be a URL, ioredis options, { cluster: { nodes } } or an ioredis client (got ${show(redis)})`,
    );
  } else if (typeof redis === 'string' && !/^rediss?:\/\//.test(redis)) {
    problems.push(`redis URL must start with redis:// or rediss:// (got ${show(redis)})`);
  }

  if (problems.length > 0) {
    throw new RedisCacheConfigError(`Invalid RedisCacheModule options:\n  - ${problems.join('\n  - ')}`);
  }
  return {
    redis,
    namespace,
    ttlMs,
    ttlProfiles,
    jitter,
    nullTtlMs,
    commandTimeoutMs,
    lock: options.lock ?? CACHE_DEFAULTS.lock,
    lockTtlMs,
    lockWaitMs,
    l1,
    freezeShared: options.freezeShared === true,
    shardedPubSub: options.shardedPubSub === true,
    compression,
  };
}

/**
 * A decorator's or a call's `ttl` in milliseconds: a number of seconds, a duration string, or a
 * profile name. `where` names the caller (`'UsersService.findOne @Cacheable'`) for the error.
 */
export function resolveTtl(ttl: TtlOption | undefined, config: ResolvedCacheConfig, where: string): number {
  if (ttl === undefined) return config.ttlMs;
  if (typeof ttl === 'string' && !isDurationString(ttl)) {
    const profile = config.ttlProfiles.get(ttl);
    if (profile === undefined) {
      const known = [...config.ttlProfiles.keys()];
      throw new RedisCacheConfigError(
        `${where}: ttl '${ttl}' is neither a duration nor a profile in ttlProfiles ` +
          `(known profiles: ${known.length ? known.join(', ') : 'none'})`,
      );
    }
    return profile;
  }
  const ms = toPositiveMilliseconds(ttl, 's');
  if (ms === undefined) {
    throw new RedisCacheConfigError(
      `${where}: ttl must be a positive, finite number of seconds, a duration or a profile name (got ${show(ttl)})`,
    );
  }
  return ms;
}

/**
 * Why `namespace` cannot be one, or undefined. No `:`: namespace `a` would contain namespace `a:b`'s
 * keys (a clear of one would reach the other). Braces only as one Cluster hash tag (`{cache}`), so
 * the module's own keys of the namespace can share a slot (core/bookkeeping-keys.ts).
 */
function checkNamespace(namespace: unknown): string | undefined {
  if (typeof namespace !== 'string' || namespace.length === 0 || namespace.length > 128) {
    return 'must be a non-empty string of at most 128 characters';
  }
  if (namespace.includes(':')) {
    return "must not contain ':' (namespace 'a' would overlap namespace 'a:b'); use '-' or '.' instead";
  }
  if (!/^[A-Za-z0-9_\-.{}]+$/.test(namespace)) return 'must be made of [A-Za-z0-9_-.{}]';
  if (/[{}]/.test(namespace) && !/^[^{}]*\{[^{}]+\}[^{}]*$/.test(namespace)) {
    return "must contain braces only as one Cluster hash tag around some text, like '{cache}'";
  }
  return undefined;
}

/** The checks `startupAdvisor` may switch off (lib/audit/startup-advisor.ts runs them). */
const ADVISOR_CHECKS = ['maxmemory', 'evictionPolicy', 'keysWithoutTtl'];

/** Why `startupAdvisor` is not `true`, `false` or an object of those checks set to booleans, or undefined. */
function checkStartupAdvisor(value: unknown): string | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  const expected = `true, false or an object of ${ADVISOR_CHECKS.join(', ')} set to booleans`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `startupAdvisor must be ${expected} (got ${show(value)})`;
  }
  for (const [check, on] of Object.entries(value)) {
    if (!ADVISOR_CHECKS.includes(check)) {
      return `startupAdvisor has no check '${check}' (it has ${ADVISOR_CHECKS.join(', ')})`;
    }
    if (on !== undefined && typeof on !== 'boolean') {
      return `startupAdvisor.${check} must be true or false (got ${show(on)})`;
    }
  }
  return undefined;
}

/** An option's value as an error shows it: never with a password (URLs masked, objects not shown). */
function show(value: unknown): string {
  if (typeof value === 'string') return `'${redactSecrets(value)}'`;
  if (typeof value === 'bigint') return `${value}n`;
  try {
    const masked = (key: string, field: unknown) => (/pass|secret|token/i.test(key) ? '***' : field);
    return redactSecrets(JSON.stringify(value, masked) ?? String(value));
  } catch {
    return redactSecrets(String(value));
  }
}
