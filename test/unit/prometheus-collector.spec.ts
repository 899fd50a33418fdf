// collectCacheMetrics: what each channel's message does to the series, with synthetic messages
// published on the real channels (the cache's pipeline publishes the same shapes).
import { jest } from '@jest/globals';
import { channel } from 'node:diagnostics_channel';
import { Registry } from 'prom-client';
import {
  CACHE_CHANNELS,
  type CacheCallEvent,
  type CacheChannel,
  type CacheConnectionEvent,
  type CacheErrorEvent,
  type CacheInvalidationEvent,
  type CacheL1DropEvent,
  type CacheLeaseWaitEvent,
  type CacheLoadEndEvent,
  type CacheLoadStartEvent,
  type CacheRouteEvent,
} from 'nestjs-redis-cache';
import { collectCacheMetrics, type CacheMetricsCollector } from 'nestjs-redis-cache/prometheus';

const source = { cache: 'default', namespace: 'app' };
const name = 'UsersService.find';

function publish<T>(name: CacheChannel, message: T): void {
  channel(name).publish(message);
}

function call(overrides: Partial<CacheCallEvent>): CacheCallEvent {
  return {
    ...source,
    name,
    operation: 'read',
    outcome: 'hit',
    tier: 'redis',
    durationMs: 2,
    startTime: Date.now(),
    fallback: false,
    key: 'app:user:1',
    ...overrides,
  };
}

/** The sample lines of one series (no HELP/TYPE) that contain every one of `parts`, as the registry prints them. */
async function samples(registry: Registry, metric: string, ...parts: string[]): Promise<string[]> {
  const text = await registry.getSingleMetricAsString(metric);
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#') && parts.every((part) => line.includes(part)));
}

describe('collectCacheMetrics', () => {
  let registry: Registry;
  let collector: CacheMetricsCollector;

  beforeEach(() => {
    registry = new Registry();
    collector = collectCacheMetrics({ registry });
  });
  afterEach(() => collector.stop());

  it('registers every series under the default prefix, with help and type', async () => {
    const metrics = await registry.getMetricsAsJSON();
    expect(metrics.map(({ name, type }) => `${name} ${type}`).sort()).toEqual([
      'nestjs_redis_cache_call_duration_seconds histogram',
      'nestjs_redis_cache_calls_total counter',
      'nestjs_redis_cache_errors_total counter',
      'nestjs_redis_cache_invalidations_total counter',
      'nestjs_redis_cache_l1_drops_total counter',
      'nestjs_redis_cache_lease_wait_seconds histogram',
      'nestjs_redis_cache_load_duration_seconds histogram',
      'nestjs_redis_cache_loads_total counter',
      'nestjs_redis_cache_redis_up gauge',
      'nestjs_redis_cache_route_duration_seconds histogram',
      'nestjs_redis_cache_route_requests_total counter',
    ]);
    expect(await registry.getSingleMetricAsString('nestjs_redis_cache_calls_total')).toBe(
      '# HELP nestjs_redis_cache_calls_total Cached calls, by outcome (hit, miss, stale, bypass, error) and tier.\n' +
        '# TYPE nestjs_redis_cache_calls_total counter',
    );
  });

  it('counts calls by outcome and tier, and times all but L1 hits (those are not timed)', async () => {
    publish(CACHE_CHANNELS.call, call({ outcome: 'miss', durationMs: 12 }));
    publish(CACHE_CHANNELS.call, call({ outcome: 'hit', durationMs: 2 }));
    publish(CACHE_CHANNELS.call, call({ outcome: 'hit', durationMs: 2 }));
    publish(CACHE_CHANNELS.call, call({ outcome: 'hit', tier: 'l1', durationMs: 0 }));
    publish(CACHE_CHANNELS.call, call({ outcome: 'bypass', tier: 'source', operation: 'write', durationMs: 30 }));

    expect(await samples(registry, 'nestjs_redis_cache_calls_total')).toEqual([
      'nestjs_redis_cache_calls_total{cache="default",name="UsersService.find",outcome="miss",tier="redis"} 1',
      'nestjs_redis_cache_calls_total{cache="default",name="UsersService.find",outcome="hit",tier="redis"} 2',
      'nestjs_redis_cache_calls_total{cache="default",name="UsersService.find",outcome="hit",tier="l1"} 1',
      'nestjs_redis_cache_calls_total{cache="default",name="UsersService.find",outcome="bypass",tier="source"} 1',
    ]);
    const duration = 'nestjs_redis_cache_call_duration_seconds';
    expect(await samples(registry, duration, '_count')).toEqual([
      `${duration}_count{cache="default",name="UsersService.find",tier="redis"} 3`,
      `${duration}_count{cache="default",name="UsersService.find",tier="source"} 1`,
    ]);
    expect(await samples(registry, duration, '_sum')).toEqual([
      `${duration}_sum{cache="default",name="UsersService.find",tier="redis"} 0.016`,
      `${duration}_sum{cache="default",name="UsersService.find",tier="source"} 0.03`,
    ]);
    // Milliseconds become seconds: 2 ms falls in le=0.0025, 12 ms first in le=0.025.
    expect(await samples(registry, duration, 'tier="redis"', 'le="0.0025"')).toEqual([
      `${duration}_bucket{le="0.0025",cache="default",name="UsersService.find",tier="redis"} 2`,
    ]);
    expect(await samples(registry, duration, 'tier="redis"', 'le="0.025"')).toEqual([
      `${duration}_bucket{le="0.025",cache="default",name="UsersService.find",tier="redis"} 3`,
    ]);
  });

  it('counts loads by background and failure, and times them; a load start alone records nothing', async () => {
    const load = { ...source, name, key: 'app:user:1' };
    publish(CACHE_CHANNELS.loadStart, { ...load, background: false } satisfies CacheLoadStartEvent);
    expect(await samples(registry, 'nestjs_redis_cache_loads_total')).toEqual([]);
    publish(CACHE_CHANNELS.loadEnd, { ...load, background: false, durationMs: 40, failed: false } as CacheLoadEndEvent);
    publish(CACHE_CHANNELS.loadEnd, { ...load, background: true, durationMs: 60, failed: true } as CacheLoadEndEvent);

    expect(await samples(registry, 'nestjs_redis_cache_loads_total')).toEqual([
      'nestjs_redis_cache_loads_total{cache="default",name="UsersService.find",background="false",failed="false"} 1',
      'nestjs_redis_cache_loads_total{cache="default",name="UsersService.find",background="true",failed="true"} 1',
    ]);
    expect(await samples(registry, 'nestjs_redis_cache_load_duration_seconds', '_count')).toEqual([
      'nestjs_redis_cache_load_duration_seconds_count{cache="default",name="UsersService.find"} 2',
    ]);
    expect(await samples(registry, 'nestjs_redis_cache_load_duration_seconds', '_sum')).toEqual([
      'nestjs_redis_cache_load_duration_seconds_sum{cache="default",name="UsersService.find"} 0.1',
    ]);
  });

  it('times lease waits by how they ended', async () => {
    const wait = { ...source, name, key: 'app:user:1' };
    publish(CACHE_CHANNELS.leaseWait, { ...wait, durationMs: 25, result: 'value' } satisfies CacheLeaseWaitEvent);
    publish(CACHE_CHANNELS.leaseWait, { ...wait, durationMs: 500, result: 'timeout' } satisfies CacheLeaseWaitEvent);

    const series = 'nestjs_redis_cache_lease_wait_seconds';
    expect(await samples(registry, series, '_count')).toEqual([
      `${series}_count{cache="default",name="UsersService.find",result="value"} 1`,
      `${series}_count{cache="default",name="UsersService.find",result="timeout"} 1`,
    ]);
    expect(await samples(registry, series, 'result="timeout"', 'le="0.25"')).toEqual([
      `${series}_bucket{le="0.25",cache="default",name="UsersService.find",result="timeout"} 0`,
    ]);
    expect(await samples(registry, series, 'result="timeout"', 'le="0.5"')).toEqual([
      `${series}_bucket{le="0.5",cache="default",name="UsersService.find",result="timeout"} 1`,
    ]);
  });

  it('counts errors by operation, invalidations by kind and failure, L1 drops by the values dropped', async () => {
    const error = { ...source, name, key: 'app:user:1', error: new Error('Connection is closed.') };
    publish(CACHE_CHANNELS.error, { ...error, operation: 'read' } satisfies CacheErrorEvent);
    publish(CACHE_CHANNELS.error, { ...error, operation: 'read' } satisfies CacheErrorEvent);
    publish(CACHE_CHANNELS.error, { ...error, operation: 'decode' } satisfies CacheErrorEvent);
    const invalidation = { ...source, name: 'CacheService' };
    publish(CACHE_CHANNELS.invalidation, {
      ...invalidation,
      kind: 'tags',
      count: 2,
      failed: false,
    } satisfies CacheInvalidationEvent);
    publish(CACHE_CHANNELS.invalidation, {
      ...invalidation,
      kind: 'keys',
      count: 5,
      failed: true,
    } satisfies CacheInvalidationEvent);
    publish(CACHE_CHANNELS.l1Drop, { ...source, reason: 'message', count: 3 } satisfies CacheL1DropEvent);
    publish(CACHE_CHANNELS.l1Drop, { ...source, reason: 'message', count: 4 } satisfies CacheL1DropEvent);

    expect(await samples(registry, 'nestjs_redis_cache_errors_total')).toEqual([
      'nestjs_redis_cache_errors_total{cache="default",name="UsersService.find",operation="read"} 2',
      'nestjs_redis_cache_errors_total{cache="default",name="UsersService.find",operation="decode"} 1',
    ]);
    expect(await samples(registry, 'nestjs_redis_cache_invalidations_total')).toEqual([
      'nestjs_redis_cache_invalidations_total{cache="default",kind="tags",failed="false"} 1',
      'nestjs_redis_cache_invalidations_total{cache="default",kind="keys",failed="true"} 1',
    ]);
    expect(await samples(registry, 'nestjs_redis_cache_l1_drops_total')).toEqual([
      'nestjs_redis_cache_l1_drops_total{cache="default",reason="message"} 7',
    ]);
  });

  it('sets redis_up per cache from the connection events', async () => {
    const down = { ...source, state: 'down', reason: 'connect ECONNREFUSED' } satisfies CacheConnectionEvent;
    publish(CACHE_CHANNELS.connection, down);
    publish(CACHE_CHANNELS.connection, { ...down, cache: 'sessions' });
    expect(await samples(registry, 'nestjs_redis_cache_redis_up')).toEqual([
      'nestjs_redis_cache_redis_up{cache="default"} 0',
      'nestjs_redis_cache_redis_up{cache="sessions"} 0',
    ]);
    publish(CACHE_CHANNELS.connection, { ...source, state: 'up', reason: undefined } satisfies CacheConnectionEvent);
    expect(await samples(registry, 'nestjs_redis_cache_redis_up')).toEqual([
      'nestjs_redis_cache_redis_up{cache="default"} 1',
      'nestjs_redis_cache_redis_up{cache="sessions"} 0',
    ]);
  });

  it('counts and times HTTP routes by outcome', async () => {
    const route = 'GET /users/:id';
    publish(CACHE_CHANNELS.route, { route, outcome: 'miss', durationMs: 50 } satisfies CacheRouteEvent);
    publish(CACHE_CHANNELS.route, { route, outcome: 'hit', durationMs: 5 } satisfies CacheRouteEvent);
    publish(CACHE_CHANNELS.route, { route, outcome: 'hit', durationMs: 5 } satisfies CacheRouteEvent);

    expect(await samples(registry, 'nestjs_redis_cache_route_requests_total')).toEqual([
      'nestjs_redis_cache_route_requests_total{route="GET /users/:id",outcome="miss"} 1',
      'nestjs_redis_cache_route_requests_total{route="GET /users/:id",outcome="hit"} 2',
    ]);
    expect(await samples(registry, 'nestjs_redis_cache_route_duration_seconds', '_count')).toEqual([
      'nestjs_redis_cache_route_duration_seconds_count{route="GET /users/:id"} 3',
    ]);
    expect(await samples(registry, 'nestjs_redis_cache_route_duration_seconds', '_sum')).toEqual([
      'nestjs_redis_cache_route_duration_seconds_sum{route="GET /users/:id"} 0.06',
    ]);
  });

  it('never throws into the publisher: a message it cannot record is reported once, as a warning', async () => {
    const warnings = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      expect(() => publish(CACHE_CHANNELS.call, call({ durationMs: Number.NaN }))).not.toThrow();
      expect(() => publish(CACHE_CHANNELS.l1Drop, { ...source, reason: 'local', count: -1 })).not.toThrow();
      // diagnostics_channel would rethrow a listener's error on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(uncaught).toEqual([]);
      expect(warnings.mock.calls).toEqual([
        [
          'nestjs-redis-cache/prometheus: a message of nestjs-redis-cache:call could not be recorded ' +
            '(Value is not a valid number: NaN); later failures are not reported',
          { code: 'NESTJS_REDIS_CACHE_PROMETHEUS' },
        ],
      ]);
      // The bad call was counted before its duration failed; the next one counts as usual.
      publish(CACHE_CHANNELS.call, call({ durationMs: 1 }));
      expect(await samples(registry, 'nestjs_redis_cache_calls_total')).toEqual([
        'nestjs_redis_cache_calls_total{cache="default",name="UsersService.find",outcome="hit",tier="redis"} 2',
      ]);
    } finally {
      process.off('uncaughtException', onUncaught);
      warnings.mockRestore();
    }
  });
});

describe('collectCacheMetrics options', () => {
  it('takes a prefix and histogram buckets', async () => {
    const registry = new Registry();
    const collector = collectCacheMetrics({ registry, prefix: 'shop_cache_', buckets: [0.001, 0.1] });
    try {
      publish(CACHE_CHANNELS.call, call({ outcome: 'miss', durationMs: 50 }));
      expect(await samples(registry, 'shop_cache_call_duration_seconds')).toEqual([
        'shop_cache_call_duration_seconds_bucket{le="0.001",cache="default",name="UsersService.find",tier="redis"} 0',
        'shop_cache_call_duration_seconds_bucket{le="0.1",cache="default",name="UsersService.find",tier="redis"} 1',
        'shop_cache_call_duration_seconds_bucket{le="+Inf",cache="default",name="UsersService.find",tier="redis"} 1',
        'shop_cache_call_duration_seconds_sum{cache="default",name="UsersService.find",tier="redis"} 0.05',
        'shop_cache_call_duration_seconds_count{cache="default",name="UsersService.find",tier="redis"} 1',
      ]);
      expect(registry.getSingleMetric('nestjs_redis_cache_calls_total')).toBeUndefined();
    } finally {
      collector.stop();
    }
  });
});
