import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RedisCacheInstrumentationOptions } from './instrumentation-options.js';

/** forRoot / forRootAsync and the options token of RedisCacheOpenTelemetryModule. */
export const {
  ConfigurableModuleClass: ConfigurableOpenTelemetryModule,
  MODULE_OPTIONS_TOKEN: REDIS_CACHE_OPENTELEMETRY_OPTIONS,
  OPTIONS_TYPE: REDIS_CACHE_OPENTELEMETRY_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: REDIS_CACHE_OPENTELEMETRY_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisCacheInstrumentationOptions>({ moduleName: 'RedisCacheOpenTelemetry' })
  .setClassMethodName('forRoot')
  .build();
