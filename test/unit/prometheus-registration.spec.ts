// Registrations of collectCacheMetrics on one registry: they share one subscription and one set of
// series (no "already registered", no double counting), and the last stop() leaves nothing behind.
import { channel, hasSubscribers } from 'node:diagnostics_channel';
import { Counter, Registry, register } from 'prom-client';
import { CACHE_CHANNELS, RedisCacheConfigError, type CacheCallEvent } from 'nestjs-redis-cache';
import { collectCacheMetrics } from 'nestjs-redis-cache/prometheus';

const CALLS = 'nestjs_redis_cache_calls_total';

function publishHit(): void {
  channel(CACHE_CHANNELS.call).publish({
    cache: 'default',
    namespace: 'app',
    name: 'UsersService.find',
    operation: 'read',
    outcome: 'hit',
    tier: 'redis',
    durationMs: 1,
    startTime: Date.now(),
    fallback: false,
    key: 'app:user:1',
  } satisfies CacheCallEvent);
}

async function hits(registry: Registry, metric = CALLS): Promise<number> {
  const { values } = await registry.getSingleMetric(metric)!.get();
  return values.reduce((sum, { value }) => sum + value, 0);
}

const anyChannelSubscribed = () => Object.values(CACHE_CHANNELS).some((name) => hasSubscribers(name));

describe('registrations', () => {
  afterEach(() => expect(anyChannelSubscribed()).toBe(false));

  it('two on one registry share the series and count each event once', async () => {
    const registry = new Registry();
    const first = collectCacheMetrics({ registry });
    const second = collectCacheMetrics({ registry });
    publishHit();
    expect(await hits(registry)).toBe(1);

    first.stop();
    first.stop(); // a second stop of one handle does not stop the other's counting
    publishHit();
    expect(await hits(registry)).toBe(2);

    second.stop();
    expect(registry.getSingleMetric(CALLS)).toBeUndefined();
    expect(await registry.metrics()).toBe('\n');
  });

  it('after the last stop, nothing is counted; a new registration starts from zero', async () => {
    const registry = new Registry();
    const collector = collectCacheMetrics({ registry });
    expect(hasSubscribers(CACHE_CHANNELS.call)).toBe(true);
    publishHit();
    collector.stop();
    expect(anyChannelSubscribed()).toBe(false);
    publishHit();

    const again = collectCacheMetrics({ registry });
    expect(await hits(registry)).toBe(0);
    again.stop();
  });

  it('other prefixes, or other registries, count on their own', async () => {
    const registry = new Registry();
    const other = new Registry();
    const collectors = [
      collectCacheMetrics({ registry }),
      collectCacheMetrics({ registry, prefix: 'app_cache_' }),
      collectCacheMetrics({ registry: other }),
    ];
    publishHit();
    collectors[1].stop();
    publishHit();
    expect(await hits(registry)).toBe(2);
    expect(registry.getSingleMetric('app_cache_calls_total')).toBeUndefined();
    expect(await hits(other)).toBe(2);
    collectors[0].stop();
    collectors[2].stop();
  });

  it("defaults to prom-client's global register", async () => {
    const collector = collectCacheMetrics();
    try {
      publishHit();
      expect(await hits(register)).toBe(1);
    } finally {
      collector.stop();
    }
    expect(register.getSingleMetric(CALLS)).toBeUndefined();
  });

  it('reuses a fitting series the app registered itself, and leaves it registered', async () => {
    const registry = new Registry();
    const own = new Counter({
      name: CALLS,
      help: 'the app made it',
      labelNames: ['tier', 'outcome', 'name', 'cache'],
      registers: [registry],
    });
    const collector = collectCacheMetrics({ registry });
    publishHit();
    collector.stop();
    expect(registry.getSingleMetric(CALLS)).toBe(own);
    expect(await hits(registry)).toBe(1);
    expect(registry.getSingleMetric('nestjs_redis_cache_errors_total')).toBeUndefined();
  });

  it('refuses a series of the same name but other labels, naming the option, and registers nothing', async () => {
    const registry = new Registry();
    new Counter({ name: 'nestjs_redis_cache_errors_total', help: 'the app made it', registers: [registry] });
    expect(() => collectCacheMetrics({ registry })).toThrow(
      new RedisCacheConfigError(
        'collectCacheMetrics: the registry already holds a counter named nestjs_redis_cache_errors_total that is ' +
          'not a counter with labels cache, name, operation; give the option `prefix` another value',
      ),
    );
    expect(registry.getMetricsAsArray().map(({ name }) => name)).toEqual(['nestjs_redis_cache_errors_total']);
  });

  it('refuses a series of the same name and another type', () => {
    const registry = new Registry();
    new Counter({
      name: 'nestjs_redis_cache_redis_up',
      help: 'a counter',
      labelNames: ['cache'],
      registers: [registry],
    });
    expect(() => collectCacheMetrics({ registry })).toThrow(
      /a counter named nestjs_redis_cache_redis_up that is not a gauge/,
    );
  });

  it('refuses a prefix Prometheus does not allow, and registers nothing', () => {
    const registry = new Registry();
    expect(() => collectCacheMetrics({ registry, prefix: 'my-cache-' })).toThrow('Invalid metric name');
    expect(registry.getMetricsAsArray()).toEqual([]);
  });
});
