// RedisCacheOpenTelemetryModule: instruments from app.init() to app.close(), with forRoot or
// forRootAsync options; and the instrumentation scope's version agrees with package.json.
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { channel } from 'node:diagnostics_channel';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { CACHE_CHANNELS, type CacheCallEvent } from 'nestjs-redis-cache';
import {
  INSTRUMENTATION_SCOPE,
  RedisCacheOpenTelemetryModule,
  type RedisCacheInstrumentationOptions,
} from 'nestjs-redis-cache/opentelemetry';

const call: CacheCallEvent = {
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
};

describe('RedisCacheOpenTelemetryModule', () => {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const calls = channel(CACHE_CHANNELS.call);

  afterEach(() => exporter.reset());

  it('forRoot: records between app.init() and app.close()', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheOpenTelemetryModule.forRoot({ tracerProvider, recordKeys: true })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    expect(calls.hasSubscribers).toBe(false);
    await app.init();
    calls.publish(call);
    await app.close();
    calls.publish(call);

    expect(calls.hasSubscribers).toBe(false);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => [span.name, span.attributes['cache.key']])).toEqual([
      ['cache.read UsersService.find', 'app:user:1'],
    ]);
  });

  it('forRoot() without options uses the global providers', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [RedisCacheOpenTelemetryModule.forRoot()] }).compile();
    const app = await moduleRef.createNestApplication({ logger: false }).init();
    try {
      expect(calls.hasSubscribers).toBe(true);
      calls.publish(call);
    } finally {
      await app.close();
    }
    expect(calls.hasSubscribers).toBe(false);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('forRootAsync: options from a factory with injected providers', async () => {
    @Injectable()
    class TelemetryConfig {
      readonly options: RedisCacheInstrumentationOptions = { tracerProvider, recordKeys: false };
    }
    @Module({ providers: [TelemetryConfig], exports: [TelemetryConfig] })
    class ConfigModule {}

    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisCacheOpenTelemetryModule.forRootAsync({
          imports: [ConfigModule],
          inject: [TelemetryConfig],
          useFactory: (config: TelemetryConfig) => config.options,
        }),
      ],
    }).compile();
    const app = await moduleRef.createNestApplication({ logger: false }).init();
    try {
      calls.publish(call);
    } finally {
      await app.close();
    }
    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => [span.name, span.attributes['cache.key']])).toEqual([
      ['cache.read UsersService.find', undefined],
    ]);
  });

  it("the instrumentation scope's version is the package's", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      name: string;
      version: string;
    };
    expect(INSTRUMENTATION_SCOPE).toEqual({ name: pkg.name, version: pkg.version });
  });
});
