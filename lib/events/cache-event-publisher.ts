import { channel } from 'node:diagnostics_channel';
import type { CacheCounters } from '../metrics/cache-counters.js';
import { currentRequestTrace, type CacheMetrics, type RequestCacheTrace } from '../metrics/cache-metrics.js';
import type { CacheOutcome } from '../metrics/cache-outcome.js';
import {
  CACHE_CHANNELS,
  type CacheCallEvent,
  type CacheConnectionEvent,
  type CacheErrorEvent,
  type CacheErrorOperation,
  type CacheEventSource,
  type CacheInvalidationEvent,
  type CacheL1DropEvent,
  type CacheLeaseWaitEvent,
  type CacheLoadEndEvent,
  type CacheLoadStartEvent,
  type CacheRouteEvent,
  type CacheTier,
} from './cache-events.js';

// Module-level: diagnostics_channel keeps one channel per name for the process, and a published
// message reaches every subscriber whichever copy of this file made the channel object.
const calls = channel(CACHE_CHANNELS.call);
const loadStarts = channel(CACHE_CHANNELS.loadStart);
const loadEnds = channel(CACHE_CHANNELS.loadEnd);
const leaseWaits = channel(CACHE_CHANNELS.leaseWait);
const errors = channel(CACHE_CHANNELS.error);
const invalidations = channel(CACHE_CHANNELS.invalidation);
const l1Drops = channel(CACHE_CHANNELS.l1Drop);
const connections = channel(CACHE_CHANNELS.connection);
const routes = channel(CACHE_CHANNELS.route);

/**
 * What one cache's pipeline tells the world: every event goes first to the built-in metrics (the
 * subscriber `stats()` reads, called directly so a hit allocates nothing), then, only while someone
 * subscribes, to its `node:diagnostics_channel` channel as a message (CACHE_CHANNELS). Arguments are
 * positional for the same reason: the message object is built only for a listener.
 */
export class CacheEventPublisher {
  private readonly source: CacheEventSource;

  constructor(
    private readonly metrics: CacheMetrics,
    cache: string,
  ) {
    this.source = { cache, namespace: '' };
  }

  /** The namespace messages carry, known once the options are resolved (at start). */
  set namespace(namespace: string) {
    this.source.namespace = namespace;
  }

  /** A call that did not end in the in-process tier finished; `started` is its `performance.now()`. */
  called(
    name: string,
    operation: 'read' | 'write',
    outcome: CacheOutcome,
    tier: CacheTier,
    started: number,
    key: string | undefined,
    fallback = false,
  ): void {
    this.calledFor(currentRequestTrace(), name, operation, outcome, tier, started, key, fallback);
  }

  /**
   * Whether someone listens to `call` messages. Such a listener takes the context a message is published
   * in as the call's own (an OpenTelemetry span's parent, say), so each call is then recorded where it
   * was made (see GetOrLoadHandler.join).
   */
  get callsObserved(): boolean {
    return calls.hasSubscribers;
  }

  /** `called` for a call made in another async context, with that context's request `trace`. */
  calledFor(
    trace: RequestCacheTrace | undefined,
    name: string,
    operation: 'read' | 'write',
    outcome: CacheOutcome,
    tier: CacheTier,
    started: number,
    key: string | undefined,
    fallback = false,
  ): void {
    const durationMs = performance.now() - started;
    this.metrics.recordFor(trace, name, outcome, durationMs, fallback);
    if (!calls.hasSubscribers) return;
    const { cache, namespace } = this.source;
    // Wall-clock, like Date.now(): performance.timeOrigin + now() drifts from it as a process ages.
    const startTime = Date.now() - durationMs;
    calls.publish({
      cache,
      namespace,
      name,
      operation,
      outcome,
      tier,
      durationMs,
      startTime,
      fallback,
      key,
    } satisfies CacheCallEvent);
  }

  /** A hit served from the in-process tier, on `counters` (the name's, looked up once by the caller). */
  l1Hit(counters: CacheCounters, name: string, key: string): void {
    this.metrics.recordL1Hit(counters);
    if (!calls.hasSubscribers) return;
    const { cache, namespace } = this.source;
    calls.publish({
      cache,
      namespace,
      name,
      operation: 'read',
      outcome: 'hit',
      tier: 'l1',
      durationMs: 0,
      startTime: Date.now(),
      fallback: false,
      key,
    } satisfies CacheCallEvent);
  }

  /** The counters an L1 hit of `name` records into (see `l1Hit`). */
  countersOf(name: string): CacheCounters {
    return this.metrics.countersOf(name);
  }

  /** A cache operation failed and the call went on without it (fail open). */
  failed(name: string, operation: CacheErrorOperation, key?: string, error?: unknown): void {
    this.metrics.recordError(name);
    if (!errors.hasSubscribers) return;
    const { cache, namespace } = this.source;
    errors.publish({ cache, namespace, name, operation, key, error } satisfies CacheErrorEvent);
  }

  /** A background refresh of `name` began (or, `failed`, its method threw: the old value stays). */
  refreshed(name: string, failed = false): void {
    this.metrics.recordRefresh(name, failed);
  }

  /**
   * Runs `loader` (the method, for the cache) and announces it: `load:start` before, `load:end` after,
   * only while someone listens; otherwise it is the loader's own promise, nothing added.
   */
  load<T>(name: string, key: string, background: boolean, loader: () => Promise<T>): Promise<T> {
    if (!loadStarts.hasSubscribers && !loadEnds.hasSubscribers) return loader();
    const started = performance.now();
    this.loadStarted(name, key, background);
    return loader().then(
      (value) => {
        this.loadEnded(name, key, background, performance.now() - started, false);
        return value;
      },
      (err: unknown) => {
        this.loadEnded(name, key, background, performance.now() - started, true);
        throw err;
      },
    );
  }

  private loadStarted(name: string, key: string, background: boolean): void {
    if (!loadStarts.hasSubscribers) return;
    const { cache, namespace } = this.source;
    loadStarts.publish({ cache, namespace, name, key, background } satisfies CacheLoadStartEvent);
  }

  private loadEnded(name: string, key: string, background: boolean, durationMs: number, failed: boolean): void {
    if (!loadEnds.hasSubscribers) return;
    const { cache, namespace } = this.source;
    loadEnds.publish({ cache, namespace, name, key, background, durationMs, failed } satisfies CacheLoadEndEvent);
  }

  leaseWaited(name: string, key: string, durationMs: number, result: CacheLeaseWaitEvent['result']): void {
    if (!leaseWaits.hasSubscribers) return;
    const { cache, namespace } = this.source;
    leaseWaits.publish({ cache, namespace, name, key, durationMs, result } satisfies CacheLeaseWaitEvent);
  }

  invalidated(name: string, kind: CacheInvalidationEvent['kind'], count: number, failed: boolean): void {
    if (!invalidations.hasSubscribers) return;
    const { cache, namespace } = this.source;
    invalidations.publish({ cache, namespace, name, kind, count, failed } satisfies CacheInvalidationEvent);
  }

  l1Dropped(reason: CacheL1DropEvent['reason'], count: number): void {
    if (count === 0 || !l1Drops.hasSubscribers) return;
    const { cache, namespace } = this.source;
    l1Drops.publish({ cache, namespace, reason, count } satisfies CacheL1DropEvent);
  }

  connectionChanged(state: CacheConnectionEvent['state'], reason?: string): void {
    if (!connections.hasSubscribers) return;
    const { cache, namespace } = this.source;
    connections.publish({ cache, namespace, state, reason } satisfies CacheConnectionEvent);
  }

  /** A message on the cache's channels that no instance would send (dropped). */
  messageRejected(): void {
    this.metrics.recordRejectedMessage();
  }
}

/** An HTTP route's outcome, from CacheMetricsInterceptor (counted in `byRoute` when it has metrics). */
export function publishRoute(
  metrics: CacheMetrics | undefined,
  route: string,
  outcome: CacheOutcome,
  durationMs: number,
): void {
  metrics?.recordRoute(route, outcome, durationMs);
  if (routes.hasSubscribers) routes.publish({ route, outcome, durationMs } satisfies CacheRouteEvent);
}
