import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RedisCacheModuleOptions } from './options/redis-cache-options.interface.js';

/**
 * `forRoot(options)` and `forRootAsync({ imports, inject, useFactory | useClass | useExisting, isGlobal })`,
 * generated. `isGlobal` (default true) makes the cache reachable from decorated classes in every module.
 */
export const {
  ConfigurableModuleClass: ConfigurableRedisCacheModule,
  MODULE_OPTIONS_TOKEN: REDIS_CACHE_MODULE_OPTIONS,
  OPTIONS_TYPE: REDIS_CACHE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: REDIS_CACHE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisCacheModuleOptions>({ moduleName: 'RedisCache' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createRedisCacheOptions')
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

/** Implemented by a `useClass` / `useExisting` options factory of `forRootAsync`. */
export interface RedisCacheOptionsFactory {
  createRedisCacheOptions(): RedisCacheModuleOptions | Promise<RedisCacheModuleOptions>;
}
