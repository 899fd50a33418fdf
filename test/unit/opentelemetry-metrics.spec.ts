// instrumentRedisCache's metrics, from synthetic messages on the cache's channels, read back by
// collecting an OpenTelemetry SDK MeterProvider: names, units, attributes, exact values, bounds.
import { channel } from 'node:diagnostics_channel';
import { metrics } from '@opentelemetry/api';
import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { CACHE_CHANNELS, type CacheCallEvent } from 'nestjs-redis-cache';
import { instrumentRedisCache, type RedisCacheInstrumentation } from 'nestjs-redis-cache/opentelemetry';

/** A reader the test collects on demand. */
class CollectingReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const source = { cache: 'default', namespace: 'app' };
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function callEvent(overrides: Partial<CacheCallEvent> = {}): CacheCallEvent {
  return {
    ...source,
    name: 'UsersService.find',
    operation: 'read',
    outcome: 'miss',
    tier: 'redis',
    durationMs: 20,
    startTime: Date.now(),
    fallback: false,
    key: 'app:user:1',
    ...overrides,
  };
}

const publish = (name: string, message: object) => channel(name).publish(message);

describe('OpenTelemetry metrics', () => {
  let reader: CollectingReader;
  let meterProvider: MeterProvider;
  let instrumentation: RedisCacheInstrumentation | undefined;

  beforeEach(() => {
    reader = new CollectingReader();
    meterProvider = new MeterProvider({ readers: [reader] });
  });

  afterEach(async () => {
    instrumentation?.disable();
    instrumentation = undefined;
    await meterProvider.shutdown();
  });

  const instrument = (options: { maxNames?: number } = {}) =>
    (instrumentation = instrumentRedisCache({ meterProvider, ...options }));

  /** Every metric collected, by name. */
  async function collect(): Promise<Map<string, MetricData>> {
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const found = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics) {
      expect(scope.scope).toEqual({ name: 'nestjs-redis-cache', version: '0.1.0', schemaUrl: undefined });
      for (const metric of scope.metrics) found.set(metric.descriptor.name, metric);
    }
    return found;
  }

  /** A counter's points as [attributes, value], in recording order. */
  async function sums(name: string): Promise<[object, number][]> {
    const metric = (await collect()).get(name);
    if (!metric) return [];
    expect(metric.dataPointType).toBe(DataPointType.SUM);
    return (metric.dataPoints as DataPoint<number>[]).map((point) => [point.attributes, point.value]);
  }

  /** A histogram's points as [attributes, count, sum], in recording order. */
  async function histograms(name: string): Promise<[object, number, number][]> {
    const metric = (await collect()).get(name);
    if (!metric) return [];
    expect(metric.dataPointType).toBe(DataPointType.HISTOGRAM);
    return (metric.dataPoints as DataPoint<Histogram>[]).map(({ attributes, value }) => {
      expect(value.buckets.boundaries).toEqual(BUCKETS);
      return [attributes, value.count, Number(value.sum!.toFixed(9))];
    });
  }

  it('counts calls by registration, name, outcome and tier, and times those not answered by L1', async () => {
    instrument();
    publish(CACHE_CHANNELS.call, callEvent());
    publish(CACHE_CHANNELS.call, callEvent({ outcome: 'hit', durationMs: 1.5 }));
    publish(CACHE_CHANNELS.call, callEvent({ outcome: 'hit', durationMs: 2.5 }));
    publish(CACHE_CHANNELS.call, callEvent({ outcome: 'hit', tier: 'l1', durationMs: 0 }));
    publish(CACHE_CHANNELS.call, callEvent({ cache: 'sessions', name: 'SessionStore.get', outcome: 'error' }));

    const attributes = (outcome: string, tier: string, cache = 'default', name = 'UsersService.find') => ({
      'cache.registration': cache,
      'cache.name': name,
      'cache.outcome': outcome,
      'cache.tier': tier,
    });
    expect(await sums('cache.calls')).toEqual([
      [attributes('miss', 'redis'), 1],
      [attributes('hit', 'redis'), 2],
      [attributes('hit', 'l1'), 1],
      [attributes('error', 'redis', 'sessions', 'SessionStore.get'), 1],
    ]);
    expect(await histograms('cache.call.duration')).toEqual([
      [attributes('miss', 'redis'), 1, 0.02],
      [attributes('hit', 'redis'), 2, 0.004],
      [attributes('error', 'redis', 'sessions', 'SessionStore.get'), 1, 0.02],
    ]);
    const descriptors = [...(await collect()).values()].map(({ descriptor: { name, unit } }) => [name, unit]);
    expect(descriptors).toEqual([
      ['cache.calls', '{call}'],
      ['cache.call.duration', 's'],
    ]);
  });

  it('times loads and lease waits, counts failures, invalidations and L1 drops', async () => {
    instrument();
    const name = 'UsersService.find';
    const key = 'app:user:1';
    publish(CACHE_CHANNELS.loadEnd, { ...source, name, key, background: false, durationMs: 40, failed: false });
    publish(CACHE_CHANNELS.loadEnd, { ...source, name, key, background: true, durationMs: 300, failed: true });
    publish(CACHE_CHANNELS.leaseWait, { ...source, name, key, durationMs: 25, result: 'value' });
    publish(CACHE_CHANNELS.leaseWait, { ...source, name, key, durationMs: 500, result: 'timeout' });
    publish(CACHE_CHANNELS.error, { ...source, name, key, operation: 'read', error: new Error('down') });
    publish(CACHE_CHANNELS.error, { ...source, name, key, operation: 'read', error: new Error('down') });
    publish(CACHE_CHANNELS.error, { ...source, name, key, operation: 'write', error: new Error('down') });
    publish(CACHE_CHANNELS.invalidation, { ...source, name: 'CacheService', kind: 'keys', count: 3, failed: false });
    publish(CACHE_CHANNELS.invalidation, { ...source, name: 'CacheService', kind: 'keys', count: 0, failed: false });
    publish(CACHE_CHANNELS.invalidation, { ...source, name: 'CacheService', kind: 'tags', count: 2, failed: true });
    publish(CACHE_CHANNELS.l1Drop, { ...source, reason: 'message', count: 4 });
    publish(CACHE_CHANNELS.l1Drop, { ...source, reason: 'message', count: 1 });
    publish(CACHE_CHANNELS.l1Drop, { ...source, reason: 'resync', count: 10 });
    // Not recorded as metrics: load starts, connection changes, routes.
    publish(CACHE_CHANNELS.loadStart, { ...source, name, key, background: false });
    publish(CACHE_CHANNELS.connection, { ...source, state: 'down', reason: 'ECONNREFUSED' });
    publish(CACHE_CHANNELS.route, { route: 'GET /users/:id', outcome: 'hit', durationMs: 3 });

    const of = { 'cache.registration': 'default', 'cache.name': name };
    expect(await histograms('cache.load.duration')).toEqual([
      [{ ...of, 'cache.load.background': false, 'cache.load.failed': false }, 1, 0.04],
      [{ ...of, 'cache.load.background': true, 'cache.load.failed': true }, 1, 0.3],
    ]);
    expect(await histograms('cache.lease_wait.duration')).toEqual([
      [{ ...of, 'cache.lease.result': 'value' }, 1, 0.025],
      [{ ...of, 'cache.lease.result': 'timeout' }, 1, 0.5],
    ]);
    expect(await sums('cache.errors')).toEqual([
      [{ ...of, 'cache.error.operation': 'read' }, 2],
      [{ ...of, 'cache.error.operation': 'write' }, 1],
    ]);
    const service = { 'cache.registration': 'default', 'cache.name': 'CacheService' };
    expect(await sums('cache.invalidations')).toEqual([
      [{ ...service, 'cache.invalidation.kind': 'keys', 'cache.invalidation.failed': false }, 2],
      [{ ...service, 'cache.invalidation.kind': 'tags', 'cache.invalidation.failed': true }, 1],
    ]);
    expect(await sums('cache.l1.drops')).toEqual([
      [{ 'cache.registration': 'default', 'cache.l1.drop.reason': 'message' }, 5],
      [{ 'cache.registration': 'default', 'cache.l1.drop.reason': 'resync' }, 10],
    ]);
    expect([...(await collect()).keys()]).toEqual([
      'cache.load.duration',
      'cache.lease_wait.duration',
      'cache.errors',
      'cache.invalidations',
      'cache.l1.drops',
    ]);
  });

  it("folds names and registrations past maxNames into '(other)', and never records a key", async () => {
    instrument({ maxNames: 2 });
    for (const name of ['A.a', 'B.b', 'C.c', 'D.d', 'A.a']) publish(CACHE_CHANNELS.call, callEvent({ name }));
    for (const cache of ['one', 'two', 'three'])
      publish(CACHE_CHANNELS.l1Drop, { ...source, cache, reason: 'local', count: 1 });

    const points = await sums('cache.calls');
    expect(points.map(([attributes, value]) => [(attributes as Record<string, string>)['cache.name'], value])).toEqual([
      ['A.a', 2],
      ['B.b', 1],
      ['(other)', 2],
    ]);
    expect(JSON.stringify(points)).not.toContain('app:user:1');
    const drops = await sums('cache.l1.drops');
    expect(
      drops.map(([attributes, value]) => [(attributes as Record<string, string>)['cache.registration'], value]),
    ).toEqual([
      // 'default' (of the calls above) and 'one' are the two kept.
      ['one', 1],
      ['(other)', 2],
    ]);
  });

  it('uses the global meter provider when none is given', async () => {
    expect(metrics.setGlobalMeterProvider(meterProvider)).toBe(true);
    try {
      instrumentation = instrumentRedisCache();
    } finally {
      metrics.disable();
    }
    publish(CACHE_CHANNELS.call, callEvent());
    expect((await sums('cache.calls')).map(([, value]) => value)).toEqual([1]);
  });

  it('disable() stops recording', async () => {
    instrument();
    publish(CACHE_CHANNELS.call, callEvent());
    instrumentation!.disable();
    publish(CACHE_CHANNELS.call, callEvent());
    publish(CACHE_CHANNELS.error, { ...source, name: 'X.y', key: undefined, operation: 'read', error: undefined });
    expect((await sums('cache.calls')).map(([, value]) => value)).toEqual([1]);
    expect(await sums('cache.errors')).toEqual([]);
  });
});
