import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RedisCacheInstrumentationOptions } from './instrumentation-options.js';

/** forRoot / forRootAsync and the options token of RedisCacheOpenTelemetryModule. */
export const {
  ConfigurableModuleClass: ConfigurableOpenTelemetryModule,
  MODULE_OPTIONS_TOKEN: REDIS_CACHE_OPENTELEMETRY_OPTIONS,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisCacheInstrumentationOptions>({ moduleName: 'RedisCacheOpenTelemetry' })
  .setClassMethodName('forRoot')
  .build();

/**
 * `RedisCacheOpenTelemetryModule.forRootAsync`'s argument. A type: Nest's builder gives it as a value
 * only so `typeof` can name it, and that value is nothing at run time.
 */
export type RedisCacheOpenTelemetryAsyncOptions = typeof ASYNC_OPTIONS_TYPE;
