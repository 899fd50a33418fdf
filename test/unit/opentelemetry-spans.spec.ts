// instrumentRedisCache's spans, from synthetic messages on the cache's channels, exported by the
// OpenTelemetry SDK's in-memory exporter: names, back-dated times, attributes, parents, failures.
import { channel } from 'node:diagnostics_channel';
import { jest } from '@jest/globals';
import { context, diag, DiagLogLevel, SpanKind, SpanStatusCode, trace, type TracerProvider } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import {
  CACHE_CHANNELS,
  type CacheCallEvent,
  type CacheErrorEvent,
  type CacheLeaseWaitEvent,
  type CacheLoadEndEvent,
} from 'nestjs-redis-cache';
import { instrumentRedisCache, type RedisCacheInstrumentation } from 'nestjs-redis-cache/opentelemetry';
import { PendingErrors } from '../../lib/opentelemetry/pending-errors.js';

const T0 = 1_700_000_000_000;
const source = { cache: 'default', namespace: 'app' };

function callEvent(overrides: Partial<CacheCallEvent> = {}): CacheCallEvent {
  return {
    ...source,
    name: 'UsersService.find',
    operation: 'read',
    outcome: 'miss',
    tier: 'redis',
    durationMs: 12.5,
    startTime: T0,
    fallback: false,
    key: 'app:user:1',
    ...overrides,
  };
}

function errorEvent(overrides: Partial<CacheErrorEvent> = {}): CacheErrorEvent {
  return {
    ...source,
    name: 'UsersService.find',
    operation: 'read',
    key: 'app:user:1',
    error: new Error('Command timed out'),
    ...overrides,
  };
}

const publish = {
  call: (event: CacheCallEvent) => channel(CACHE_CHANNELS.call).publish(event),
  loadEnd: (event: CacheLoadEndEvent) => channel(CACHE_CHANNELS.loadEnd).publish(event),
  leaseWait: (event: CacheLeaseWaitEvent) => channel(CACHE_CHANNELS.leaseWait).publish(event),
  error: (event: CacheErrorEvent) => channel(CACHE_CHANNELS.error).publish(event),
};

const ms = ([seconds, nanos]: [number, number]) => seconds * 1000 + nanos / 1e6;

describe('OpenTelemetry spans', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let instrumentation: RedisCacheInstrumentation | undefined;

  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });

  afterAll(() => {
    context.disable();
  });

  afterEach(() => {
    instrumentation?.disable();
    instrumentation = undefined;
    exporter.reset();
  });

  const instrument = (options: { recordKeys?: boolean; maxNames?: number; tracerProvider?: TracerProvider } = {}) =>
    (instrumentation = instrumentRedisCache({ tracerProvider: provider, ...options }));
  const spans = (): ReadableSpan[] => exporter.getFinishedSpans();

  it('a call is one INTERNAL span ending now, back-dated by its duration, with its outcome attributes and no key', () => {
    instrument();
    // On the wall clock, as the SDK's own spans: the message's startTime (another clock) is not read.
    const now = jest.spyOn(Date, 'now').mockReturnValue(T0);
    try {
      publish.call(callEvent({ startTime: 1 }));
      now.mockReturnValue(T0 + 100);
      publish.call(callEvent({ outcome: 'hit', tier: 'l1', durationMs: 0 }));
      publish.call(callEvent({ name: 'UsersService.save', operation: 'write', outcome: 'bypass', tier: 'source' }));
    } finally {
      now.mockRestore();
    }

    expect(spans().map((span) => span.name)).toEqual([
      'cache.read UsersService.find',
      'cache.read UsersService.find',
      'cache.write UsersService.save',
    ]);
    const [miss, l1Hit] = spans();
    expect(miss!.kind).toBe(SpanKind.INTERNAL);
    expect(miss!.startTime).toEqual([1_699_999_999, 987_500_000]);
    expect(miss!.endTime).toEqual([1_700_000_000, 0]);
    expect(miss!.attributes).toEqual({
      'cache.registration': 'default',
      'cache.namespace': 'app',
      'cache.name': 'UsersService.find',
      'db.system.name': 'redis',
      'cache.operation': 'read',
      'cache.outcome': 'miss',
      'cache.tier': 'redis',
      'cache.fallback': false,
    });
    expect(miss!.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(miss!.events).toEqual([]);
    expect(miss!.parentSpanContext).toBeUndefined();
    expect(miss!.instrumentationScope).toEqual({ name: 'nestjs-redis-cache', version: '0.1.0' });
    expect(l1Hit!.startTime).toEqual([1_700_000_000, 100_000_000]);
    expect(l1Hit!.endTime).toEqual(l1Hit!.startTime);
    expect(l1Hit!.attributes).toMatchObject({ 'cache.outcome': 'hit', 'cache.tier': 'l1' });
  });

  it('records the key only with recordKeys', () => {
    instrument({ recordKeys: true });
    publish.call(callEvent());
    publish.call(callEvent({ key: undefined }));
    expect(spans().map((span) => span.attributes['cache.key'])).toEqual(['app:user:1', undefined]);
  });

  it("is a child of the caller's active span, across awaits", async () => {
    instrument();
    const tracer = provider.getTracer('test');
    const parent = await tracer.startActiveSpan('GET /users/:id', async (span) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      publish.call(callEvent());
      span.end();
      return span;
    });
    // Outside it: a root span.
    publish.call(callEvent({ outcome: 'hit' }));

    const [inside, request, outside] = spans();
    expect(request!.name).toBe('GET /users/:id');
    expect(inside!.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(inside!.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(outside!.parentSpanContext).toBeUndefined();
    expect(outside!.spanContext().traceId).not.toBe(parent.spanContext().traceId);
  });

  it("follows the global tracer provider when none is given (the Node SDK's)", () => {
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
    try {
      instrumentation = instrumentRedisCache();
      publish.call(callEvent());
    } finally {
      trace.disable();
    }
    expect(spans().map((span) => span.name)).toEqual(['cache.read UsersService.find']);
  });

  it('failures published inside the call become exception events of its span, which ends in error', () => {
    instrument();
    const before = Date.now();
    publish.error(errorEvent());
    publish.error(errorEvent({ operation: 'write', error: 'EPIPE' }));
    publish.call(callEvent({ outcome: 'error', durationMs: 1_000 }));
    const after = Date.now();

    const [span] = spans();
    expect(span!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'read: Command timed out' });
    expect(span!.events.map(({ name, attributes }) => ({ name, attributes }))).toEqual([
      {
        name: 'exception',
        attributes: {
          'exception.type': 'Error',
          'exception.message': 'Command timed out',
          'cache.error.operation': 'read',
        },
      },
      {
        name: 'exception',
        attributes: { 'exception.type': 'string', 'exception.message': 'EPIPE', 'cache.error.operation': 'write' },
      },
    ]);
    // When they happened: inside the call's span, on its clock.
    for (const { time } of span!.events) {
      expect(ms(time)).toBeGreaterThanOrEqual(Math.max(before - 1, ms(span!.startTime)));
      expect(ms(time)).toBeLessThanOrEqual(Math.min(after + 1, ms(span!.endTime)));
    }
  });

  it('a foreign value is described; an error outcome without a failure message still ends in error', () => {
    instrument();
    publish.error(errorEvent({ operation: 'foreign', error: undefined }));
    publish.error(errorEvent({ operation: 'decode', error: undefined }));
    publish.call(callEvent());
    publish.call(callEvent({ outcome: 'error' }));

    const [miss, error] = spans();
    expect(miss!.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'foreign: the key holds a value the cache did not write',
    });
    expect(miss!.events.map(({ attributes }) => attributes)).toEqual([
      {
        'exception.type': 'ForeignValue',
        'exception.message': 'the key holds a value the cache did not write',
        'cache.error.operation': 'foreign',
      },
      { 'exception.type': 'Unknown', 'exception.message': 'decode failed', 'cache.error.operation': 'decode' },
    ]);
    // The failures went to the first call: the second has none of its own.
    expect(error!.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(error!.events).toEqual([]);
  });

  it('a failure of another key, name or cache, or from before the call began, is not the call’s', async () => {
    instrument();
    publish.error(errorEvent({ key: 'app:user:2' }));
    publish.error(errorEvent({ name: 'UsersService.other' }));
    publish.error(errorEvent({ cache: 'sessions' }));
    publish.error(errorEvent());
    await new Promise((resolve) => setTimeout(resolve, 30));
    // This call began (2 ms ago) after every failure above.
    publish.call(callEvent({ durationMs: 2 }));
    expect(spans()[0]!.events).toEqual([]);
    expect(spans()[0]!.status).toEqual({ code: SpanStatusCode.UNSET });
  });

  it("loads and lease waits are spans ending when they did, back-dated, under their call's span", () => {
    instrument({ recordKeys: true });
    const before = Date.now();
    publish.loadEnd({
      ...source,
      name: 'UsersService.find',
      key: 'app:user:1',
      background: false,
      durationMs: 40,
      failed: false,
    });
    publish.loadEnd({
      ...source,
      name: 'UsersService.find',
      key: 'app:user:1',
      background: true,
      durationMs: 8,
      failed: true,
    });
    publish.leaseWait({ ...source, name: 'UsersService.find', key: 'app:user:1', durationMs: 25, result: 'value' });
    const after = Date.now();
    // The background refresh is exported at once; the others wait for their call.
    expect(spans().map((span) => span.name)).toEqual(['cache.load UsersService.find']);
    publish.call(callEvent({ durationMs: 100 }));

    const [refresh, load, wait, read] = spans();
    expect(spans().map((span) => span.name)).toEqual([
      'cache.load UsersService.find',
      'cache.load UsersService.find',
      'cache.lease_wait UsersService.find',
      'cache.read UsersService.find',
    ]);
    expect(load!.parentSpanContext?.spanId).toBe(read!.spanContext().spanId);
    expect(wait!.parentSpanContext?.spanId).toBe(read!.spanContext().spanId);
    expect(refresh!.parentSpanContext).toBeUndefined();
    const common = {
      'cache.registration': 'default',
      'cache.namespace': 'app',
      'cache.name': 'UsersService.find',
      'db.system.name': 'redis',
      'cache.key': 'app:user:1',
    };
    expect(load!.attributes).toEqual({ ...common, 'cache.load.background': false, 'cache.load.failed': false });
    expect(load!.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(refresh!.attributes).toEqual({ ...common, 'cache.load.background': true, 'cache.load.failed': true });
    expect(refresh!.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(wait!.attributes).toEqual({ ...common, 'cache.lease.result': 'value' });
    expect(wait!.kind).toBe(SpanKind.INTERNAL);
    for (const [span, duration] of [
      [load!, 40],
      [refresh!, 8],
      [wait!, 25],
    ] as const) {
      expect(ms(span.endTime)).toBeGreaterThanOrEqual(before);
      expect(ms(span.endTime)).toBeLessThanOrEqual(after);
      expect(span.duration).toEqual([0, duration * 1e6]);
    }
  });

  it("names past maxNames fold into '(other)' in span names, not in the cache.name attribute", () => {
    instrument({ maxNames: 2 });
    for (const name of ['A.a', 'B.b', 'C.c', 'A.a']) publish.call(callEvent({ name }));
    expect(spans().map((span) => [span.name, span.attributes['cache.name']])).toEqual([
      ['cache.read A.a', 'A.a'],
      ['cache.read B.b', 'B.b'],
      ['cache.read (other)', 'C.c'],
      ['cache.read A.a', 'A.a'],
    ]);
  });

  it('a tracer that throws never reaches the publisher: diag hears of it', () => {
    const logged: unknown[][] = [];
    diag.setLogger(
      {
        error: (...args) => logged.push(args),
        warn: () => undefined,
        info: () => undefined,
        debug: () => undefined,
        verbose: () => undefined,
      },
      DiagLogLevel.ERROR,
    );
    const broken = new Error('exporter exploded');
    const tracerProvider: TracerProvider = {
      getTracer: () => ({
        startSpan: () => {
          throw broken;
        },
        startActiveSpan: () => {
          throw broken;
        },
      }),
    };
    try {
      instrument({ tracerProvider });
      expect(() => publish.call(callEvent())).not.toThrow();
      // A message missing its fields is no worse.
      expect(() => channel(CACHE_CHANNELS.loadEnd).publish(null)).not.toThrow();
    } finally {
      diag.disable();
    }
    expect(logged.map(([message, error]) => [message, error === broken])).toEqual([
      ['nestjs-redis-cache: recording a span of a message on nestjs-redis-cache:call failed', true],
      ['nestjs-redis-cache: recording a span of a message on nestjs-redis-cache:load:end failed', false],
      ['nestjs-redis-cache: recording metrics of a message on nestjs-redis-cache:load:end failed', false],
    ]);
  });

  it('disable() unsubscribes from every channel, once or twice', () => {
    instrument();
    const channels = Object.values(CACHE_CHANNELS).map((name) => channel(name));
    expect(channels.filter((c) => c.hasSubscribers).map((c) => c.name)).toEqual([
      CACHE_CHANNELS.call,
      CACHE_CHANNELS.loadEnd,
      CACHE_CHANNELS.leaseWait,
      CACHE_CHANNELS.error,
      CACHE_CHANNELS.invalidation,
      CACHE_CHANNELS.l1Drop,
    ]);
    instrumentation!.disable();
    instrumentation!.disable();
    expect(channels.filter((c) => c.hasSubscribers)).toEqual([]);
    publish.call(callEvent());
    expect(spans()).toEqual([]);
  });

  it('rejects a maxNames that is not a positive integer', () => {
    for (const maxNames of [0, -1, 1.5, Number.NaN]) {
      expect(() => instrumentRedisCache({ tracerProvider: provider, maxNames })).toThrow(
        `instrumentRedisCache: maxNames must be a positive integer, got ${maxNames}`,
      );
    }
  });
});

describe('PendingErrors', () => {
  it('forgets the oldest calls past 256, and keeps the last 8 failures of one call', () => {
    const pending = new PendingErrors();
    for (let i = 0; i < 300; i++) pending.add(errorEvent({ key: `k${i}` }), 10);
    for (let i = 0; i < 10; i++) pending.add(errorEvent({ key: 'k299', error: new Error(`e${i}`) }), 10);
    expect(pending.take(callEvent({ key: 'k43' }), 0)).toEqual([]);
    expect(pending.take(callEvent({ key: 'k44' }), 0)).toHaveLength(1);
    const last = pending.take(callEvent({ key: 'k299' }), 0);
    expect(last.map(({ event }) => (event.error as Error).message)).toEqual([
      'e2',
      'e3',
      'e4',
      'e5',
      'e6',
      'e7',
      'e8',
      'e9',
    ]);
    // Taken: gone.
    expect(pending.take(callEvent({ key: 'k299' }), 0)).toEqual([]);
    // A failure from before the call began is an earlier call's.
    pending.add(errorEvent(), 10);
    expect(pending.take(callEvent(), 11)).toEqual([]);
  });
});
