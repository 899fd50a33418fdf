import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { RedisCacheConfigError } from '../errors.js';

/** The series the collector keeps, by role; each name below is prefixed (`nestjs_redis_cache_` by default). */
export interface CacheMetricSet {
  /** `calls_total`. */
  calls: Counter<'cache' | 'name' | 'outcome' | 'tier'>;
  /** `call_duration_seconds`: every call but L1 hits, which are not timed. */
  callDuration: Histogram<'cache' | 'name' | 'tier'>;
  /** `loads_total`. */
  loads: Counter<'cache' | 'name' | 'background' | 'failed'>;
  /** `load_duration_seconds`. */
  loadDuration: Histogram<'cache' | 'name'>;
  /** `lease_wait_seconds`. */
  leaseWait: Histogram<'cache' | 'name' | 'result'>;
  /** `errors_total`. */
  errors: Counter<'cache' | 'name' | 'operation'>;
  /** `invalidations_total`. */
  invalidations: Counter<'cache' | 'kind' | 'failed'>;
  /** `l1_drops_total`. */
  l1Drops: Counter<'cache' | 'reason'>;
  /** `redis_up`. */
  redisUp: Gauge<'cache'>;
  /** `route_requests_total`. */
  routeRequests: Counter<'route' | 'outcome'>;
  /** `route_duration_seconds`. */
  routeDuration: Histogram<'route'>;
}

export interface RegisteredCacheMetrics {
  metrics: CacheMetricSet;
  /** Removes from the registry the series this registration created (not those it found there). */
  unregister(): void;
}

/**
 * Registers the cache's series on `registry`, or reuses those already there under the same names and
 * labels (the app registered one itself, say), so registering never fails with prom-client's "already
 * registered" over a series that would fit.
 */
export function registerCacheMetrics(
  registry: Registry,
  prefix: string,
  buckets: readonly number[],
): RegisteredCacheMetrics {
  const series = new SeriesRegistrar(registry, prefix, buckets);
  try {
    return { metrics: createMetricSet(series), unregister: () => series.unregister() };
  } catch (error) {
    // A name taken by something else, or a prefix prom-client refuses: leave the registry as it was.
    series.unregister();
    throw error;
  }
}

function createMetricSet(series: SeriesRegistrar): CacheMetricSet {
  return {
    calls: series.counter('calls_total', 'Cached calls, by outcome (hit, miss, stale, bypass, error) and tier.', [
      'cache',
      'name',
      'outcome',
      'tier',
    ]),
    callDuration: series.histogram(
      'call_duration_seconds',
      'Duration of cached calls, from the call to its answer, by tier (redis, source); L1 hits are not timed.',
      ['cache', 'name', 'tier'],
    ),
    loads: series.counter(
      'loads_total',
      'Runs of the cached method (or loader), by whether they refreshed in the background and whether they threw.',
      ['cache', 'name', 'background', 'failed'],
    ),
    loadDuration: series.histogram('load_duration_seconds', 'Duration of the cached method (or loader) runs.', [
      'cache',
      'name',
    ]),
    leaseWait: series.histogram(
      'lease_wait_seconds',
      "Waits for another caller's load of the same key, by how they ended (value, empty, timeout).",
      ['cache', 'name', 'result'],
    ),
    errors: series.counter(
      'errors_total',
      'Cache operations that failed while the call went on without them (fail open), by operation.',
      ['cache', 'name', 'operation'],
    ),
    invalidations: series.counter(
      'invalidations_total',
      'Invalidations (keys, tags, prefix, reclaim), by whether Redis failed them (they are then replayed).',
      ['cache', 'kind', 'failed'],
    ),
    l1Drops: series.counter(
      'l1_drops_total',
      'Values dropped from the in-process tier (L1), by reason (message, local, resync).',
      ['cache', 'reason'],
    ),
    redisUp: series.gauge('redis_up', '1 while the cache reaches Redis, 0 while it does not.', ['cache']),
    routeRequests: series.counter(
      'route_requests_total',
      'HTTP requests whose handler made cached calls, by route and outcome.',
      ['route', 'outcome'],
    ),
    routeDuration: series.histogram(
      'route_duration_seconds',
      'Duration of HTTP requests whose handler made cached calls, by route.',
      ['route'],
    ),
  };
}

type MetricType = 'counter' | 'gauge' | 'histogram';

/** Creates each series on the registry, or takes the one registered under its name when it fits. */
class SeriesRegistrar {
  private readonly created: string[] = [];

  constructor(
    private readonly registry: Registry,
    private readonly prefix: string,
    private readonly buckets: readonly number[],
  ) {}

  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return this.getOrCreate(name, 'counter', labelNames, (fullName) => {
      return new Counter({ name: fullName, help, labelNames, registers: [this.registry] });
    });
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> {
    return this.getOrCreate(name, 'gauge', labelNames, (fullName) => {
      return new Gauge({ name: fullName, help, labelNames, registers: [this.registry] });
    });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[]): Histogram<L> {
    return this.getOrCreate(name, 'histogram', labelNames, (fullName) => {
      return new Histogram({
        name: fullName,
        help,
        labelNames,
        buckets: [...this.buckets],
        registers: [this.registry],
      });
    });
  }

  unregister(): void {
    for (const name of this.created) this.registry.removeSingleMetric(name);
  }

  /**
   * The metric registered under the prefixed name, else a new one. One of another type or other labels
   * is a configuration error: reusing it would fail at the first event, creating one would throw.
   */
  private getOrCreate<M>(
    name: string,
    type: MetricType,
    labelNames: readonly string[],
    create: (fullName: string) => M,
  ): M {
    const fullName = this.prefix + name;
    const found = this.registry.getSingleMetric(fullName) as { type?: string; labelNames?: string[] } | undefined;
    if (!found) {
      const metric = create(fullName);
      this.created.push(fullName);
      return metric;
    }
    const sameLabels =
      found.labelNames?.length === labelNames.length && labelNames.every((label) => found.labelNames?.includes(label));
    if (found.type !== type || !sameLabels) {
      throw new RedisCacheConfigError(
        `collectCacheMetrics: the registry already holds a ${found.type ?? 'metric'} named ${fullName} ` +
          `that is not a ${type} with labels ${labelNames.join(', ')}; give the option \`prefix\` another value`,
      );
    }
    return found as M;
  }
}
