import { Inject, Injectable } from '@nestjs/common';
import { DiscoveryService, ModuleRef } from '@nestjs/core';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type { Cluster, Redis } from 'ioredis';
import type { CacheService } from '../cache.service.js';
import { cacheNameOf, cacheTokens, DEFAULT_CACHE, registrationOf } from '../cache-names.js';
import { RedisCacheConfigError } from '../errors.js';
import { toPositiveMilliseconds } from '../options/duration.js';
import { redactSecrets } from '../store/connection-problems.js';
import { pingWithin, type PingOutcome } from './ping-within.js';
import type { RedisCacheHealthDetails, RedisCacheHealthOptions } from './redis-cache-health-options.interface.js';

const WHERE = 'RedisCacheHealthIndicator.isHealthy';
const DEFAULT_TIMEOUT_MS = 1_000;
/** setTimeout's largest delay; a longer one would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** The start of every registration's CacheService token (see cache-names.ts). */
const SERVICE_TOKEN_PREFIX = cacheTokens('').service;

/**
 * A `@nestjs/terminus` health indicator for a cache's Redis: PINGs the cache's own client and reports
 * the latency, with how this instance's subscription and in-process tier stand (`CacheService.status()`).
 * When Redis does not answer in time the app still serves (uncached), so the check stays `up` with
 * `state: 'degraded'`; it is `down` only for a cache the app marks `required`.
 *
 * @example
 * @Module({ imports: [TerminusModule], providers: [RedisCacheHealthIndicator], controllers: [HealthController] })
 * class HealthModule {}
 *
 * @Controller('health')
 * class HealthController {
 *   constructor(
 *     private readonly health: HealthCheckService,
 *     private readonly cache: RedisCacheHealthIndicator,
 *   ) {}
 *
 *   @Get() @HealthCheck()
 *   check() {
 *     return this.health.check([() => this.cache.isHealthy('cache', { timeout: 500 })]);
 *   }
 * }
 */
@Injectable()
export class RedisCacheHealthIndicator {
  /** The CacheService of each cache name checked so far. */
  private readonly services = new Map<string, CacheService>();

  constructor(
    @Inject(HealthIndicatorService) private readonly health: HealthIndicatorService,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
  ) {}

  /**
   * The health of a cache's Redis under `key` in the health check's result:
   * `{ [key]: { status, state, cache, latencyMs?, message?, subscribed, l1, pendingInvalidations } }`
   * (see `RedisCacheHealthDetails`).
   * Throws a RedisCacheConfigError for a cache name no registration has, or an invalid `timeout`.
   */
  async isHealthy<const Key extends string>(
    key: Key,
    options: RedisCacheHealthOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const cache = cacheNameOf(options.cache, WHERE);
    const timeoutMs = timeoutOf(options.timeout);
    const service = this.serviceOf(cache);
    const indicator = this.health.check(key);
    const ping = await pingClient(service, timeoutMs);
    const instance = instanceStatus(service);
    if (ping.answered) {
      const details: RedisCacheHealthDetails = { state: 'up', cache, latencyMs: ping.latencyMs, ...instance };
      return indicator.up(details);
    }
    const latency = ping.latencyMs === undefined ? {} : { latencyMs: ping.latencyMs };
    if (options.required) {
      const details: RedisCacheHealthDetails = {
        state: 'down',
        cache,
        ...latency,
        message: `${ping.reason}; the cache is required`,
        ...instance,
      };
      return indicator.down(details);
    }
    const details: RedisCacheHealthDetails = {
      state: 'degraded',
      cache,
      ...latency,
      message: `${ping.reason}; the app serves without the cache`,
      ...instance,
    };
    return indicator.up(details);
  }

  /** The CacheService registered as `cache`, found once; a clear error when there is none. */
  private serviceOf(cache: string): CacheService {
    let service = this.services.get(cache);
    if (service) return service;
    try {
      // By its string token, which every copy of the package agrees on (see cache-names.ts).
      service = this.moduleRef.get<CacheService>(cacheTokens(cache).service, { strict: false });
    } catch (err) {
      const registered = this.registeredCaches();
      const known = registered.length > 0 ? registered.map((name) => `'${name}'`).join(', ') : 'none';
      throw new RedisCacheConfigError(
        `${WHERE}: no cache is registered as '${cache}' (the app registers ${known}): pass a registered name as \`cache\`, ` +
          `or register it with ${registrationOf(cache)}`,
        { cause: err },
      );
    }
    this.services.set(cache, service);
    return service;
  }

  /** The names of the caches registered in the app, default first; empty when they cannot be listed. */
  private registeredCaches(): string[] {
    let discovery: DiscoveryService;
    try {
      // RedisCacheModule imports DiscoveryModule, so wherever a cache is registered this is found.
      discovery = this.moduleRef.get(DiscoveryService, { strict: false });
    } catch {
      return [];
    }
    const names = new Set<string>();
    for (const { token } of discovery.getProviders()) {
      if (typeof token === 'string' && token.startsWith(SERVICE_TOKEN_PREFIX)) {
        names.add(token.slice(SERVICE_TOKEN_PREFIX.length));
      }
    }
    return [...names].sort((a, b) => Number(b === DEFAULT_CACHE) - Number(a === DEFAULT_CACHE) || a.localeCompare(b));
  }
}

/** How this instance's cache stands beside Redis's answer (CacheService.status()). */
function instanceStatus(
  service: CacheService,
): Pick<RedisCacheHealthDetails, 'subscribed' | 'l1' | 'pendingInvalidations'> {
  const { subscribed, l1, pendingInvalidations } = service.status();
  return { subscribed, l1, pendingInvalidations };
}

/** The PING of `service`'s client; a cache without one (not started yet, or closed) has not answered. */
async function pingClient(service: CacheService, timeoutMs: number): Promise<PingOutcome> {
  let client: Redis | Cluster;
  try {
    client = service.client;
  } catch (err) {
    return { answered: false, reason: redactSecrets((err as Error).message) };
  }
  return pingWithin(client, timeoutMs);
}

function timeoutOf(timeout: RedisCacheHealthOptions['timeout']): number {
  const ms = toPositiveMilliseconds(timeout ?? DEFAULT_TIMEOUT_MS, 'ms');
  if (ms === undefined || ms > MAX_TIMEOUT_MS) {
    throw new RedisCacheConfigError(
      `${WHERE}: timeout ${JSON.stringify(timeout)} is not a duration: give milliseconds (a positive number ` +
        `up to ${MAX_TIMEOUT_MS}) or a duration with a unit ('500ms', '2s')`,
    );
  }
  return ms;
}
