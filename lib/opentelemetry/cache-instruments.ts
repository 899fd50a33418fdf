import type { Counter, Histogram, Meter } from '@opentelemetry/api';
import type {
  CacheCallEvent,
  CacheErrorEvent,
  CacheInvalidationEvent,
  CacheL1DropEvent,
  CacheLeaseWaitEvent,
  CacheLoadEndEvent,
} from '../events/cache-events.js';
import type { BoundedNames } from '../metrics/bounded-names.js';
import { CACHE_ATTRIBUTES as ATTR, CACHE_METRICS } from './cache-attributes.js';
import type { CacheListeners } from './cache-subscriptions.js';

/**
 * Bucket bounds (seconds) for the duration histograms: a Redis hit takes a fraction of a millisecond,
 * a load may take seconds. The SDK's default bounds are milliseconds-sized and would put every
 * cache call in the first bucket.
 */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The cache's metrics, recorded through an OpenTelemetry meter. Attributes are bounded: the
 * registration and cache name (past `maxNames`, `'(other)'`) and small enumerations; never a key.
 */
export class CacheInstruments {
  private readonly calls: Counter;
  private readonly callDuration: Histogram;
  private readonly loadDuration: Histogram;
  private readonly leaseWaitDuration: Histogram;
  private readonly errors: Counter;
  private readonly invalidations: Counter;
  private readonly l1Drops: Counter;

  constructor(
    meter: Meter,
    private readonly registrations: BoundedNames,
    private readonly names: BoundedNames,
  ) {
    const seconds = (description: string) => ({
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.calls = meter.createCounter(CACHE_METRICS.calls, {
      description: 'Cached calls, by outcome and the tier that answered',
      unit: '{call}',
    });
    this.callDuration = meter.createHistogram(
      CACHE_METRICS.callDuration,
      seconds('Duration of cached calls not answered by the in-process tier'),
    );
    this.loadDuration = meter.createHistogram(
      CACHE_METRICS.loadDuration,
      seconds('Duration of the method (or loader) run for the cache'),
    );
    this.leaseWaitDuration = meter.createHistogram(
      CACHE_METRICS.leaseWaitDuration,
      seconds("Time spent waiting for another caller's load of the same key"),
    );
    this.errors = meter.createCounter(CACHE_METRICS.errors, {
      description: 'Cache operations that failed while the call went on without them (fail open)',
      unit: '{error}',
    });
    this.invalidations = meter.createCounter(CACHE_METRICS.invalidations, {
      description: 'Invalidations: key deletions, tag invalidations, prefix clears and reclaims',
      unit: '{invalidation}',
    });
    this.l1Drops = meter.createCounter(CACHE_METRICS.l1Drops, {
      description: 'Values dropped from the in-process tier (L1)',
      unit: '{value}',
    });
  }

  listeners(): CacheListeners {
    return {
      call: (event) => this.call(event),
      loadEnd: (event) => this.load(event),
      leaseWait: (event) => this.leaseWait(event),
      error: (event) => this.error(event),
      invalidation: (event) => this.invalidation(event),
      l1Drop: (event) => this.l1Drop(event),
    };
  }

  private call(event: CacheCallEvent): void {
    const attributes = {
      ...this.source(event.cache, event.name),
      [ATTR.outcome]: event.outcome,
      [ATTR.tier]: event.tier,
    };
    this.calls.add(1, attributes);
    // An L1 hit is not timed (the cache does not read the clock for it): a 0 would drag the quantiles down.
    if (event.tier !== 'l1') this.callDuration.record(event.durationMs / 1000, attributes);
  }

  private load(event: CacheLoadEndEvent): void {
    this.loadDuration.record(event.durationMs / 1000, {
      ...this.source(event.cache, event.name),
      [ATTR.loadBackground]: event.background,
      [ATTR.loadFailed]: event.failed,
    });
  }

  private leaseWait(event: CacheLeaseWaitEvent): void {
    this.leaseWaitDuration.record(event.durationMs / 1000, {
      ...this.source(event.cache, event.name),
      [ATTR.leaseResult]: event.result,
    });
  }

  private error(event: CacheErrorEvent): void {
    this.errors.add(1, { ...this.source(event.cache, event.name), [ATTR.errorOperation]: event.operation });
  }

  /** One per invalidation, whatever it deleted: a delete of absent keys was still asked for. */
  private invalidation(event: CacheInvalidationEvent): void {
    this.invalidations.add(1, {
      ...this.source(event.cache, event.name),
      [ATTR.invalidationKind]: event.kind,
      [ATTR.invalidationFailed]: event.failed,
    });
  }

  private l1Drop(event: CacheL1DropEvent): void {
    this.l1Drops.add(event.count, {
      [ATTR.registration]: this.registrations.bound(event.cache),
      [ATTR.l1DropReason]: event.reason,
    });
  }

  private source(cache: string, name: string): Record<string, string> {
    return { [ATTR.registration]: this.registrations.bound(cache), [ATTR.name]: this.names.bound(name) };
  }
}
