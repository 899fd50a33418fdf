import { Module, type DynamicModule } from '@nestjs/common';
import type { RedisCacheInstrumentationOptions } from './instrumentation-options.js';
import { RedisCacheOpenTelemetryLifecycle } from './redis-cache-opentelemetry.lifecycle.js';
import { ConfigurableOpenTelemetryModule } from './redis-cache-opentelemetry.module-definition.js';

/**
 * OpenTelemetry spans and metrics for every cache of the application (`instrumentRedisCache` from
 * `app.init()` to `app.close()`). Import it once, in the root module, after the OpenTelemetry SDK
 * has started.
 *
 * @example
 * import { RedisCacheOpenTelemetryModule } from 'nestjs-redis-cache/opentelemetry';
 *
 * @Module({ imports: [RedisCacheModule.forRoot(), RedisCacheOpenTelemetryModule.forRoot()] })
 * export class AppModule {}
 *
 * // or, from configuration:
 * RedisCacheOpenTelemetryModule.forRootAsync({
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ recordKeys: config.get('CACHE_TRACE_KEYS') === 'true' }),
 * })
 */
@Module({ providers: [RedisCacheOpenTelemetryLifecycle] })
export class RedisCacheOpenTelemetryModule extends ConfigurableOpenTelemetryModule {
  static override forRoot(options: RedisCacheInstrumentationOptions = {}): DynamicModule {
    return super.forRoot(options);
  }
}
