// RedisCacheOpenTelemetryModule in a real application on real Redis: the spans (through the SDK's
// in-memory exporter) and metrics (through a MeterProvider the test collects) that @Cacheable calls
// produce — a miss then a hit under a request span (the load under the miss), a lease wait under the
// waiting call, a background refresh under the request that started it, an L1 hit, and a Redis outage.
import 'reflect-metadata';
import { channel } from 'node:diagnostics_channel';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { context, SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import {
  CACHE_CHANNELS,
  Cacheable,
  CacheService,
  RedisCacheModule,
  type RedisCacheModuleOptions,
} from 'nestjs-redis-cache';
import { RedisCacheOpenTelemetryModule } from 'nestjs-redis-cache/opentelemetry';
import { waitFor } from '../support/load-helpers.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis, type OwnRedis } from '../support/own-redis.js';
import { testRedisConnection, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class CatalogService {
  runs = 0;

  @Cacheable({ key: 'product:{0}' })
  async product(id: number): Promise<{ id: number }> {
    this.runs++;
    await new Promise((resolve) => setTimeout(resolve, 20));
    return { id };
  }

  /** Slow enough for a second app's caller to wait for its lease. */
  @Cacheable({ key: 'slow:{0}' })
  async slow(id: number): Promise<{ id: number }> {
    this.runs++;
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { id };
  }

  /** Fresh for 1 s, then served stale while one caller refreshes it. */
  @Cacheable({ key: 'brief:{0}', ttl: 1, staleWhileRevalidate: 60 })
  async brief(id: number): Promise<{ id: number; run: number }> {
    return { id, run: ++this.runs };
  }

  @Cacheable({ key: 'kept:{0}', l1: true })
  async kept(id: number): Promise<{ id: number }> {
    this.runs++;
    return { id };
  }
}

/** A reader the test collects on demand. */
class CollectingReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const NAME = 'CatalogService.product';

describe('OpenTelemetry on a real application', () => {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = tracerProvider.getTracer('test');
  let reader: CollectingReader;
  let meterProvider: MeterProvider;
  let app: INestApplication | undefined;
  let own: OwnRedis | undefined;

  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });

  afterAll(() => {
    context.disable();
  });

  beforeEach(() => {
    reader = new CollectingReader();
    meterProvider = new MeterProvider({ readers: [reader] });
  });

  afterEach(async () => {
    await app?.close();
    await own?.stop();
    await meterProvider.shutdown();
    exporter.reset();
    app = own = undefined;
  });

  /**
   * The app: the cache (commandTimeout 1 s, as createTestApp's; an L1 for `kept`) and the OpenTelemetry
   * module on the test's providers.
   */
  async function start(cache: RedisCacheModuleOptions): Promise<CatalogService> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisCacheModule.forRoot({
          redis: testRedisConnection(),
          commandTimeout: 1_000,
          l1: { max: 100, ttl: 60 },
          ...cache,
        }),
        RedisCacheOpenTelemetryModule.forRoot({ tracerProvider, meterProvider, recordKeys: true }),
      ],
      providers: [CatalogService],
    }).compile();
    app = await moduleRef.createNestApplication({ logger: false }).init();
    return app.get(CatalogService);
  }

  /** Every metric collected, by name. */
  async function collect(): Promise<Map<string, MetricData>> {
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    return new Map(
      resourceMetrics.scopeMetrics.flatMap(({ metrics }) => metrics.map((metric) => [metric.descriptor.name, metric])),
    );
  }

  /** [attributes, value] of a counter; [attributes, count] of a histogram. */
  async function points(name: string): Promise<[object, number][]> {
    const metric = (await collect()).get(name);
    if (!metric) return [];
    if (metric.dataPointType === DataPointType.HISTOGRAM) {
      return (metric.dataPoints as DataPoint<Histogram>[]).map(({ attributes, value }) => [attributes, value.count]);
    }
    return (metric.dataPoints as DataPoint<number>[]).map(({ attributes, value }) => [attributes, value]);
  }

  const within = (inner: ReadableSpan, outer: ReadableSpan) => {
    const ms = ([s, ns]: [number, number]) => s * 1000 + ns / 1e6;
    // Slack: both clocks are Date.now(), read in whole milliseconds.
    expect(ms(inner.startTime)).toBeGreaterThanOrEqual(ms(outer.startTime) - 2);
    expect(ms(inner.endTime)).toBeLessThanOrEqual(ms(outer.endTime) + 2);
  };

  it('a miss then a hit: two read spans under the request span, the load under the miss, and their metrics', async () => {
    const namespace = uniqueNamespace('otel');
    const catalog = await start({ namespace });
    let request!: Span;
    await tracer.startActiveSpan('GET /products/:id', async (span) => {
      request = span;
      await catalog.product(1);
      await catalog.product(1);
      span.end();
    });
    expect(catalog.runs).toBe(1);
    await app!.close();
    app = undefined;
    // Closed: the instrumentation is off.
    expect(channel(CACHE_CHANNELS.call).hasSubscribers).toBe(false);

    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => span.name)).toEqual([
      `cache.load ${NAME}`,
      `cache.read ${NAME}`,
      `cache.read ${NAME}`,
      'GET /products/:id',
    ]);
    const [load, miss, hit, parent] = spans as [ReadableSpan, ReadableSpan, ReadableSpan, ReadableSpan];
    for (const span of [load, miss, hit]) {
      expect(span.kind).toBe(SpanKind.INTERNAL);
      expect(span.spanContext().traceId).toBe(request.spanContext().traceId);
      within(span, parent);
    }
    for (const span of [miss, hit]) expect(span.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    // The method ran for the call that missed: its span is the load's parent.
    expect(load.parentSpanContext?.spanId).toBe(miss.spanContext().spanId);
    const common = {
      'cache.registration': 'default',
      'cache.namespace': namespace,
      'cache.name': NAME,
      'cache.key': `${namespace}:product:1`,
      'db.system.name': 'redis',
    };
    expect(load.attributes).toEqual({ ...common, 'cache.load.background': false, 'cache.load.failed': false });
    expect(miss.attributes).toEqual({
      ...common,
      'cache.operation': 'read',
      'cache.outcome': 'miss',
      'cache.tier': 'redis',
      'cache.fallback': false,
    });
    expect(hit.attributes).toEqual({ ...miss.attributes, 'cache.outcome': 'hit' });
    expect(miss.status).toEqual({ code: SpanStatusCode.UNSET });
    within(load, miss);
    // The method sleeps 20 ms: the load took at least that, and the miss as long as its load.
    const ms = ([s, ns]: [number, number]) => s * 1000 + ns / 1e6;
    expect(ms(load.duration)).toBeGreaterThanOrEqual(19);
    expect(ms(miss.duration)).toBeGreaterThanOrEqual(ms(load.duration) - 0.01);

    const of = { 'cache.registration': 'default', 'cache.name': NAME };
    const miss_ = { ...of, 'cache.outcome': 'miss', 'cache.tier': 'redis' };
    const hit_ = { ...of, 'cache.outcome': 'hit', 'cache.tier': 'redis' };
    expect(await points('cache.calls')).toEqual([
      [miss_, 1],
      [hit_, 1],
    ]);
    expect(await points('cache.call.duration')).toEqual([
      [miss_, 1],
      [hit_, 1],
    ]);
    expect(await points('cache.load.duration')).toEqual([
      [{ ...of, 'cache.load.background': false, 'cache.load.failed': false }, 1],
    ]);
    expect(await points('cache.errors')).toEqual([]);
  });

  it("a lease wait is a child of the waiting call's span; the load a child of the holder's", async () => {
    const namespace = uniqueNamespace('otel-lease');
    const waiterCatalog = await start({ namespace });
    // A second application on the same Redis and namespace: another process, as far as leases go. The
    // instrumentation hears every cache of the process, so its spans are recorded too.
    const holder = await Test.createTestingModule({
      imports: [
        RedisCacheModule.forRoot({
          redis: testRedisConnection(),
          namespace,
          l1: { max: 100, ttl: 60 },
          startupAdvisor: false,
        }),
      ],
      providers: [CatalogService],
    }).compile();
    const holderApp = await holder.createNestApplication({ logger: false }).init();
    try {
      const holding = tracer.startActiveSpan('holder', (span) =>
        holderApp
          .get(CatalogService)
          .slow(1)
          .finally(() => span.end()),
      );
      await waitFor('the holder to run the method', () => holderApp.get(CatalogService).runs === 1);
      await tracer.startActiveSpan('waiter', (span) => waiterCatalog.slow(1).finally(() => span.end()));
      await holding;
    } finally {
      await holderApp.close();
    }
    expect(waiterCatalog.runs).toBe(0);

    const spans = exporter.getFinishedSpans();
    const named = (name: string) => spans.filter((span) => span.name === name);
    const [holderSpan] = named('holder');
    const [waiterSpan] = named('waiter');
    const reads = named('cache.read CatalogService.slow');
    expect(reads).toHaveLength(2);
    const childOf = (span: ReadableSpan) =>
      reads.find((read) => read.parentSpanContext?.spanId === span.spanContext().spanId)!;
    const [holderRead, waiterRead] = [childOf(holderSpan!), childOf(waiterSpan!)];
    expect([holderRead.attributes['cache.outcome'], waiterRead.attributes['cache.outcome']]).toEqual(['miss', 'hit']);
    const [load] = named('cache.load CatalogService.slow');
    const [wait] = named('cache.lease_wait CatalogService.slow');
    expect(load!.parentSpanContext?.spanId).toBe(holderRead.spanContext().spanId);
    expect(wait!.parentSpanContext?.spanId).toBe(waiterRead.spanContext().spanId);
    expect(wait!.attributes['cache.lease.result']).toBe('value');
    within(wait!, waiterRead);
  });

  it('a background refresh is a load span under the request that served the stale value', async () => {
    const namespace = uniqueNamespace('otel-refresh');
    const catalog = await start({ namespace });
    expect(await catalog.brief(1)).toEqual({ id: 1, run: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // past its 1 s TTL, within staleWhileRevalidate
    exporter.reset();
    let request!: Span;
    await tracer.startActiveSpan('GET /brief/1', async (span) => {
      request = span;
      expect(await catalog.brief(1)).toEqual({ id: 1, run: 1 }); // stale, while it is refreshed
      span.end();
    });
    await waitFor('the refresh to finish', () =>
      exporter.getFinishedSpans().some((span) => span.name.startsWith('cache.load')),
    );
    const spans = exporter.getFinishedSpans();
    const [read] = spans.filter((span) => span.name === 'cache.read CatalogService.brief');
    const [load] = spans.filter((span) => span.name === 'cache.load CatalogService.brief');
    expect(read!.attributes['cache.outcome']).toBe('stale');
    expect(load!.attributes['cache.load.background']).toBe(true);
    expect(read!.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(load!.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
  });

  it('an L1 hit is a zero-length span of tier l1, counted but not timed', async () => {
    const namespace = uniqueNamespace('otel-l1');
    const catalog = await start({ namespace });
    const cache = app!.get(CacheService);
    // L1 serves once this instance has subscribed and heard the presence marker settle.
    await waitFor(
      'L1 to serve',
      async () => (await catalog.kept(7)) && (cache.stats().byName['CatalogService.kept']?.l1Hits ?? 0) > 0,
      5_000,
    );
    exporter.reset();
    await catalog.kept(7);
    const stats = cache.stats().byName['CatalogService.kept']!;

    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => [span.name, span.attributes['cache.tier'], span.attributes['cache.outcome']])).toEqual([
      ['cache.read CatalogService.kept', 'l1', 'hit'],
    ]);
    expect(spans[0]!.endTime).toEqual(spans[0]!.startTime);
    expect(spans[0]!.parentSpanContext).toBeUndefined();

    // The metrics agree with the cache's own stats.
    const calls = new Map(
      (await points('cache.calls')).map(([attributes, value]) => [
        `${(attributes as Record<string, string>)['cache.outcome']}/${(attributes as Record<string, string>)['cache.tier']}`,
        value,
      ]),
    );
    expect(calls.get('hit/l1')).toBe(stats.l1Hits);
    expect((calls.get('hit/l1') ?? 0) + (calls.get('hit/redis') ?? 0)).toBe(stats.hits);
    expect(calls.get('miss/redis')).toBe(stats.misses);
    const timedTiers = (await points('cache.call.duration')).map(
      ([attributes]) => (attributes as Record<string, string>)['cache.tier'],
    );
    expect(timedTiers).not.toContain('l1');
    expect(timedTiers).toContain('redis');
  });

  it(
    'an outage: each failed read is an exception event of its call span, which ends in error; errors counted',
    async () => {
      own = await startOwnRedis();
      const namespace = uniqueNamespace('otel-down');
      const moduleRef = await Test.createTestingModule({
        imports: [
          RedisCacheModule.forRoot({ redis: own.connection, namespace, commandTimeout: 200, l1: { max: 10, ttl: 60 } }),
          RedisCacheOpenTelemetryModule.forRoot({ tracerProvider, meterProvider }),
        ],
        providers: [CatalogService],
      }).compile();
      app = await moduleRef.createNestApplication({ logger: false }).init();
      const catalog = app.get(CatalogService);
      await own.kill();
      expect(await catalog.product(3)).toEqual({ id: 3 });
      expect(await catalog.product(3)).toEqual({ id: 3 });

      const reads = exporter.getFinishedSpans().filter((span) => span.name === `cache.read ${NAME}`);
      expect(reads).toHaveLength(2);
      for (const span of reads) {
        expect(span.attributes).toMatchObject({ 'cache.outcome': 'error', 'cache.tier': 'redis' });
        expect(span.attributes['cache.key']).toBeUndefined();
        expect(span.status.code).toBe(SpanStatusCode.ERROR);
        expect(span.status.message).toMatch(/^read: ./);
        expect(span.events.map(({ name, attributes }) => [name, attributes?.['cache.error.operation']])).toEqual([
          ['exception', 'read'],
        ]);
        expect(span.events[0]!.attributes?.['exception.message']).toBe(span.status.message!.slice('read: '.length));
      }

      const of = { 'cache.registration': 'default', 'cache.name': NAME };
      expect(await points('cache.errors')).toEqual([[{ ...of, 'cache.error.operation': 'read' }, 2]]);
      expect(await points('cache.calls')).toEqual([[{ ...of, 'cache.outcome': 'error', 'cache.tier': 'redis' }, 2]]);
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );
});
