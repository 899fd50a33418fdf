import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { register, type Registry } from 'prom-client';
import { cacheEventRecorders } from './cache-event-recorders.js';
import { registerCacheMetrics } from './cache-metric-set.js';
import {
  DEFAULT_DURATION_BUCKETS,
  DEFAULT_MAX_LABEL_VALUES,
  DEFAULT_PREFIX,
  type CollectCacheMetricsOptions,
} from './prometheus-options.js';

/** What `collectCacheMetrics` returns: call `stop()` to stop counting (the module does it on shutdown). */
export interface CacheMetricsCollector {
  /** Stops this registration; the last one of a registry and prefix unsubscribes and removes the series. */
  stop(): void;
}

/** One subscription to the channels, shared by every registration of the same registry and prefix. */
interface SharedCollection {
  subscribers: number;
  close(): void;
}

// Process-wide, not module-wide: two copies of this package (an ESM and a CommonJS build, two
// versions) registering on one registry must share one subscription, or every event would count twice.
const COLLECTIONS = Symbol.for('nestjs-redis-cache:prometheus-collections');
type Collections = WeakMap<Registry, Map<string, SharedCollection>>;

/**
 * Keeps Prometheus series of the cache up to date from its `node:diagnostics_channel` events: calls by
 * outcome and tier, their durations, loads, lease waits, errors, invalidations, L1 drops, Redis
 * reachability and HTTP routes. Registrations of one registry and prefix share the series (a second
 * one neither fails nor counts twice); the series leave the registry when the last one stops.
 *
 * @example
 * import { register } from 'prom-client';
 * import { collectCacheMetrics } from 'nestjs-redis-cache/prometheus';
 *
 * const collector = collectCacheMetrics(); // series on prom-client's global `register`
 * // ...wherever the app already serves `await register.metrics()`, the cache's series are in it
 * collector.stop(); // on shutdown
 */
export function collectCacheMetrics(options: CollectCacheMetricsOptions = {}): CacheMetricsCollector {
  const registry = options.registry ?? register;
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const byPrefix = collectionsOf(registry);
  const collection = byPrefix.get(prefix) ?? startCollection(registry, prefix, options);
  byPrefix.set(prefix, collection);
  collection.subscribers++;

  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      if (--collection.subscribers > 0) return;
      byPrefix.delete(prefix);
      collection.close();
    },
  };
}

function collectionsOf(registry: Registry): Map<string, SharedCollection> {
  const global = globalThis as { [COLLECTIONS]?: Collections };
  const collections = (global[COLLECTIONS] ??= new WeakMap());
  let byPrefix = collections.get(registry);
  if (!byPrefix) collections.set(registry, (byPrefix = new Map()));
  return byPrefix;
}

function startCollection(registry: Registry, prefix: string, options: CollectCacheMetricsOptions): SharedCollection {
  const { metrics, unregister } = registerCacheMetrics(registry, prefix, options.buckets ?? DEFAULT_DURATION_BUCKETS);
  const recorders = cacheEventRecorders(metrics, options.maxLabelValues ?? DEFAULT_MAX_LABEL_VALUES);
  let warned = false;
  const listeners = [...recorders].map(([channel, record]) => {
    const listener = (message: unknown) => {
      // diagnostics_channel rethrows a listener's error as an uncaught exception: a metrics bug (or a
      // malformed message) must not take the app down, so it is reported once and otherwise ignored.
      try {
        record(message);
      } catch (error) {
        if (warned) return;
        warned = true;
        process.emitWarning(
          `nestjs-redis-cache/prometheus: a message of ${channel} could not be recorded ` +
            `(${error instanceof Error ? error.message : String(error)}); later failures are not reported`,
          { code: 'NESTJS_REDIS_CACHE_PROMETHEUS' },
        );
      }
    };
    subscribe(channel, listener);
    return { channel, listener };
  });
  return {
    subscribers: 0,
    close() {
      for (const { channel, listener } of listeners) unsubscribe(channel, listener);
      unregister();
    },
  };
}
