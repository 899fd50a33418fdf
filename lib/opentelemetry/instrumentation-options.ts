import type { MeterProvider, TracerProvider } from '@opentelemetry/api';

/** Options of `instrumentRedisCache` and `RedisCacheOpenTelemetryModule.forRoot`. */
export interface RedisCacheInstrumentationOptions {
  /**
   * Where the spans go. Default: the global provider (`trace.getTracerProvider()`, the one the Node SDK
   * registers); spans follow it even when the SDK starts after the instrumentation.
   */
  tracerProvider?: TracerProvider;
  /**
   * Where the metrics go. Default: the global provider (`metrics.getMeterProvider()`) as it is when the
   * instrumentation starts, so start the SDK before the Nest application.
   */
  meterProvider?: MeterProvider;
  /**
   * Put the Redis key on spans (`cache.key`). Default `false`: keys often hold user ids. Keys never go
   * on metrics.
   */
  recordKeys?: boolean;
  /**
   * How many distinct cache names (and, apart, registration names) metric attributes and span names
   * keep; the ones seen after that are reported as `'(other)'`. Default 500.
   */
  maxNames?: number;
}
