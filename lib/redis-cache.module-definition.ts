import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency, Type } from '@nestjs/common';
import type { RedisCacheModuleOptions } from './options/redis-cache-options.interface.js';

/** The token of the default cache's options (a string: both copies of the package agree on it). */
export const REDIS_CACHE_MODULE_OPTIONS = 'REDIS_CACHE_MODULE_OPTIONS';

/** Implemented by a `useClass` / `useExisting` options factory of `forRootAsync`. */
export interface RedisCacheOptionsFactory {
  createRedisCacheOptions(): RedisCacheModuleOptions | Promise<RedisCacheModuleOptions>;
}

/**
 * `RedisCacheModule.forRootAsync(...)`: the options come from a factory, a class implementing
 * `RedisCacheOptionsFactory`, or an existing provider of one. `name` and `isGlobal` are given here:
 * they decide the providers before the factory runs.
 */
export interface RedisCacheModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** The cache's name (see `RedisCacheModuleOptions.name`); the factory's options may repeat it. */
  name?: string;
  /** Register the providers globally. Default `true`. */
  isGlobal?: boolean;
  useFactory?: (...args: any[]) => RedisCacheModuleOptions | Promise<RedisCacheModuleOptions>; // eslint-disable-line @typescript-eslint/no-explicit-any
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  useClass?: Type<RedisCacheOptionsFactory>;
  useExisting?: Type<RedisCacheOptionsFactory>;
  /** Providers only the factory needs. */
  extraProviders?: ModuleMetadata['providers'];
}
