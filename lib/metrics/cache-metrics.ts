import { AsyncLocalStorage } from 'node:async_hooks';
import type { CacheOutcome } from './cache-outcome.js';
import { CacheCounters, hitRate } from './cache-counters.js';
import type { CacheNameStats, CacheStats } from './cache-stats.interface.js';
import { OTHER_NAME } from './bounded-names.js';

/** How many cache names (and routes) get counters of their own. */
export const MAX_NAMES = 1_000;
/** Where the names past MAX_NAMES are counted. */
export { OTHER_NAME };

/** What the HTTP interceptor learns from the cached calls made while it handles one request. */
export interface RequestCacheTrace {
  outcomes: CacheOutcome[];
}

/**
 * The trace of the request being handled, shared by every registration (named caches included), so
 * one interceptor sees the cached calls a handler made through any of them.
 */
const requestTraces = new AsyncLocalStorage<RequestCacheTrace>();

/** The trace of the request being handled in this async context, if any (see `CacheMetrics.recordFor`). */
export function currentRequestTrace(): RequestCacheTrace | undefined {
  return requestTraces.getStore();
}

/** Runs `handle` with a fresh request trace that every cache's `record` appends to. */
export function traceRequest<T>(trace: RequestCacheTrace, handle: () => T): T {
  return requestTraces.run(trace, handle);
}

/**
 * The counters of one application's cache: per cache name, per HTTP route, and the trace of the
 * request being handled (an AsyncLocalStorage the interceptor opens, so the decorated call deep in
 * a service can tell the controller's interceptor what it did). One instance per application: two
 * Nest apps in a process never share counters.
 */
export class CacheMetrics {
  private readonly names = new Map<string, CacheCounters>();
  private readonly routes = new Map<string, CacheCounters>();
  private rejectedMessages = 0;
  private overflowed = false;

  constructor(
    /** Told once when names or routes outgrow MAX_NAMES (see `counters`). */
    private readonly onOverflow: (message: string) => void = () => undefined,
  ) {}

  /**
   * Records one call's outcome and latency under `name`, and in the current request's trace;
   * `fallback`: a grace value answered it because the method failed or was too slow.
   * @internal
   */
  record(name: string, outcome: CacheOutcome, latencyMs: number, fallback = false): void {
    this.recordFor(requestTraces.getStore(), name, outcome, latencyMs, fallback);
  }

  /**
   * `record` for a call whose request `trace` was taken where the call was made (`currentRequestTrace`),
   * recorded from another async context: the callers that share one answer (GetOrLoadHandler.join).
   * @internal
   */
  recordFor(
    trace: RequestCacheTrace | undefined,
    name: string,
    outcome: CacheOutcome,
    latencyMs: number,
    fallback = false,
  ): void {
    const counters = this.counters(this.names, name);
    counters.record(outcome, latencyMs);
    if (fallback) counters.fallbacks++;
    trace?.outcomes.push(outcome);
  }

  /**
   * The counters of `name`, for a caller that records many L1 hits without looking them up each time.
   * @internal
   */
  countersOf(name: string): CacheCounters {
    return this.counters(this.names, name);
  }

  /**
   * Records a hit served from the in-process tier on `counters` (from `countersOf`): counted in
   * `hits` and `l1Hits`, with latency 0 (well under a microsecond; reading the clock would cost more).
   * @internal
   */
  recordL1Hit(counters: CacheCounters): void {
    counters.l1Hits++;
    counters.record('hit', 0);
    requestTraces.getStore()?.outcomes.push('hit');
  }

  /**
   * Counts a message on the cache's channels that no instance would send (dropped).
   * @internal
   */
  recordRejectedMessage(): void {
    this.rejectedMessages++;
  }

  /**
   * Counts one failed cache operation (read, write, delete, encode, decode) under `name`.
   * @internal
   */
  recordError(name: string): void {
    this.counters(this.names, name).errors++;
  }

  /**
   * Counts one background refresh started under `name`, and whether its method failed.
   * @internal
   */
  recordRefresh(name: string, failed = false): void {
    const counters = this.counters(this.names, name);
    if (failed) counters.refreshFailures++;
    else counters.refreshes++;
  }

  /** @internal */
  recordRoute(route: string, outcome: CacheOutcome, latencyMs: number): void {
    this.counters(this.routes, route).record(outcome, latencyMs);
  }

  /**
   * Every counter back to zero (RedisCacheTesting.reset). Kept in place, not dropped: an executor
   * holds the counters of the names it records L1 hits under.
   * @internal
   */
  reset(): void {
    for (const counters of [...this.names.values(), ...this.routes.values()]) counters.reset();
    this.rejectedMessages = 0;
  }

  stats(): CacheStats {
    const byName: Record<string, CacheNameStats> = {};
    let hits = 0,
      misses = 0,
      stale = 0,
      bypasses = 0,
      errors = 0,
      failedCalls = 0,
      refreshes = 0,
      refreshFailures = 0,
      fallbacks = 0,
      l1Hits = 0;
    for (const [name, counters] of this.names) {
      byName[name] = counters.snapshot();
      hits += counters.hits;
      misses += counters.misses;
      stale += counters.stale;
      bypasses += counters.bypasses;
      errors += counters.errors;
      failedCalls += counters.failedCalls;
      refreshes += counters.refreshes;
      refreshFailures += counters.refreshFailures;
      fallbacks += counters.fallbacks;
      l1Hits += counters.l1Hits;
    }
    const byRoute: Record<string, CacheNameStats> = {};
    for (const [route, counters] of this.routes) byRoute[route] = counters.snapshot();
    return {
      rejectedMessages: this.rejectedMessages,
      hits,
      misses,
      stale,
      bypasses,
      failedCalls,
      errors,
      refreshes,
      refreshFailures,
      fallbacks,
      l1Hits,
      hitRate: hitRate(hits + stale, misses + failedCalls),
      byName,
      byRoute,
    };
  }

  /**
   * The counters of `key`. Names come from code (`getOrSet`'s `name` may be built per call), so past
   * MAX_NAMES distinct ones the rest share OTHER_NAME: memory stays bounded, and the overflow is
   * reported once.
   */
  private counters(map: Map<string, CacheCounters>, key: string): CacheCounters {
    let counters = map.get(key);
    if (counters) return counters;
    if (map.size >= MAX_NAMES) {
      if (!this.overflowed) {
        this.overflowed = true;
        this.onOverflow(
          `more than ${MAX_NAMES} cache names or routes: the rest are counted together as '${OTHER_NAME}' ` +
            `(a name built per call, e.g. getOrSet({ name: \`user:\${id}\` }), should be one name per kind of value)`,
        );
      }
      key = OTHER_NAME;
      counters = map.get(key);
      if (counters) return counters;
    }
    map.set(key, (counters = new CacheCounters()));
    return counters;
  }
}
