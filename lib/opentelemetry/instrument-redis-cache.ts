import { metrics, trace } from '@opentelemetry/api';
import { RedisCacheConfigError } from '../errors.js';
import { BoundedNames } from '../metrics/bounded-names.js';
import { CacheInstruments } from './cache-instruments.js';
import { CacheSpans } from './cache-spans.js';
import { subscribeCacheListeners } from './cache-subscriptions.js';
import type { RedisCacheInstrumentationOptions } from './instrumentation-options.js';
import { INSTRUMENTATION_SCOPE } from './instrumentation-scope.js';

const DEFAULT_MAX_NAMES = 500;

/** What `instrumentRedisCache` returns. */
export interface RedisCacheInstrumentation {
  /** Unsubscribes from the cache's channels: nothing more is recorded. Calling it again does nothing. */
  disable(): void;
}

/**
 * Records every cache in the process as OpenTelemetry spans and metrics, from the messages the cache
 * publishes on `node:diagnostics_channel` (CACHE_CHANNELS): a span per cached call under the caller's
 * active span, with its loads and lease waits as child spans; counters and histograms through the meter. Call it once per
 * process (a second instrumentation records everything twice); in a Nest application,
 * `RedisCacheOpenTelemetryModule` calls it for you.
 *
 * @example
 * // after the OpenTelemetry SDK has started (see docs/opentelemetry.md)
 * const instrumentation = instrumentRedisCache({ recordKeys: false });
 * // ...
 * instrumentation.disable();
 */
export function instrumentRedisCache(options: RedisCacheInstrumentationOptions = {}): RedisCacheInstrumentation {
  const maxNames = options.maxNames ?? DEFAULT_MAX_NAMES;
  if (!Number.isInteger(maxNames) || maxNames < 1) {
    throw new RedisCacheConfigError(`instrumentRedisCache: maxNames must be a positive integer, got ${maxNames}`);
  }
  const { name, version } = INSTRUMENTATION_SCOPE;
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(name, version);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(name, version);
  // One bound for spans and metrics alike, so a name folded into '(other)' is folded everywhere.
  const names = new BoundedNames(maxNames);
  const spans = new CacheSpans(tracer, names, options.recordKeys ?? false);
  const instruments = new CacheInstruments(meter, new BoundedNames(maxNames), names);
  const unsubscribe = [
    subscribeCacheListeners(spans.listeners(), 'a span'),
    subscribeCacheListeners(instruments.listeners(), 'metrics'),
  ];
  return {
    disable: () => {
      unsubscribe.forEach((stop) => stop());
      spans.flush();
    },
  };
}
