// collectCacheMetrics keeps its label sets bounded: never a key, and past `maxLabelValues` distinct
// caches, names or routes the rest are counted under '(other)'.
import { channel } from 'node:diagnostics_channel';
import { Registry, type Histogram } from 'prom-client';
import { CACHE_CHANNELS, type CacheCallEvent, type CacheErrorEvent, type CacheRouteEvent } from 'nestjs-redis-cache';
import { collectCacheMetrics, DEFAULT_MAX_LABEL_VALUES, OTHER_LABEL_VALUE } from 'nestjs-redis-cache/prometheus';

function publishCall(overrides: Partial<CacheCallEvent>): void {
  channel(CACHE_CHANNELS.call).publish({
    cache: 'default',
    namespace: 'app',
    name: 'UsersService.find',
    operation: 'read',
    outcome: 'miss',
    tier: 'redis',
    durationMs: 1,
    startTime: Date.now(),
    fallback: false,
    key: 'app:user:1',
    ...overrides,
  } satisfies CacheCallEvent);
}

/** label value → the counter's value, for one label of one series. */
async function byLabel(registry: Registry, metric: string, label: string): Promise<Record<string, number>> {
  const { values } = await registry.getSingleMetric(metric)!.get();
  const totals: Record<string, number> = {};
  for (const { labels, value } of values) {
    const key = String(labels[label]);
    totals[key] = (totals[key] ?? 0) + value;
  }
  return totals;
}

describe('label cardinality', () => {
  it('never makes a key a label, in any series', async () => {
    const registry = new Registry();
    const collector = collectCacheMetrics({ registry });
    try {
      publishCall({ key: 'app:user:secret-4242' });
      channel(CACHE_CHANNELS.error).publish({
        cache: 'default',
        namespace: 'app',
        name: 'UsersService.find',
        operation: 'read',
        key: 'app:user:secret-4242',
        error: new Error('app:user:secret-4242 timed out'),
      } satisfies CacheErrorEvent);
      const text = await registry.metrics();
      expect(text).toContain(
        'nestjs_redis_cache_errors_total{cache="default",name="UsersService.find",operation="read"} 1',
      );
      expect(text).not.toContain('secret-4242');
    } finally {
      collector.stop();
    }
  });

  it('folds names, caches and routes past maxLabelValues into (other), keeping those seen first', async () => {
    const registry = new Registry();
    const collector = collectCacheMetrics({ registry, maxLabelValues: 2 });
    try {
      for (const name of ['A.one', 'A.two', 'A.three', 'A.four', 'A.one']) publishCall({ name });
      for (const cache of ['default', 'sessions', 'reports', 'default']) publishCall({ cache, name: 'A.one' });
      for (const route of ['GET /a', 'GET /b', 'GET /c', 'GET /b']) {
        channel(CACHE_CHANNELS.route).publish({ route, outcome: 'hit', durationMs: 1 } satisfies CacheRouteEvent);
      }

      expect(await byLabel(registry, 'nestjs_redis_cache_calls_total', 'name')).toEqual({
        'A.one': 6,
        'A.two': 1,
        [OTHER_LABEL_VALUE]: 2,
      });
      expect(await byLabel(registry, 'nestjs_redis_cache_calls_total', 'cache')).toEqual({
        default: 7,
        sessions: 1,
        [OTHER_LABEL_VALUE]: 1,
      });
      expect(await byLabel(registry, 'nestjs_redis_cache_route_requests_total', 'route')).toEqual({
        'GET /a': 1,
        'GET /b': 2,
        [OTHER_LABEL_VALUE]: 1,
      });
    } finally {
      collector.stop();
    }
  });

  it(`holds at ${DEFAULT_MAX_LABEL_VALUES} names by default, whatever getOrSet is given`, async () => {
    const registry = new Registry();
    const collector = collectCacheMetrics({ registry });
    try {
      for (let i = 0; i < 1_000; i++) publishCall({ name: `report:${i}` });
      const names = await byLabel(registry, 'nestjs_redis_cache_calls_total', 'name');
      expect(Object.keys(names)).toHaveLength(DEFAULT_MAX_LABEL_VALUES + 1);
      expect(names['report:199']).toBe(1);
      expect(names[OTHER_LABEL_VALUE]).toBe(1_000 - DEFAULT_MAX_LABEL_VALUES);
      // The histogram holds as many label sets too, not one per call.
      const histogram = registry.getSingleMetric('nestjs_redis_cache_call_duration_seconds') as Histogram;
      const { values } = await histogram.get();
      const counts = values.filter(({ metricName }) => metricName === 'nestjs_redis_cache_call_duration_seconds_count');
      expect(counts).toHaveLength(DEFAULT_MAX_LABEL_VALUES + 1);
    } finally {
      collector.stop();
    }
  });
});
