import { SetMetadata, type ExecutionContext } from '@nestjs/common';
import { RedisCacheConfigError } from '../errors.js';
import type { TtlOption } from '../options/redis-cache-options.interface.js';
import { checkHttpCacheTtl } from './http-cache-ttl.js';

/** Metadata written by `@CacheKey` (read only by http-cache-metadata.ts). */
export const HTTP_CACHE_KEY_METADATA = 'nestjs-redis-cache:http-cache-key';
/** Metadata written by `@CacheTTL`. */
export const HTTP_CACHE_TTL_METADATA = 'nestjs-redis-cache:http-cache-ttl';
/** Metadata written by `@CachePublic`. */
export const HTTP_CACHE_PUBLIC_METADATA = 'nestjs-redis-cache:http-cache-public';

/** A route's cache key computed per request; `undefined` leaves the response uncached. */
export type HttpCacheKeyFactory = (context: ExecutionContext) => string | undefined | Promise<string | undefined>;
/** A route's TTL computed per request: seconds, a duration string or a `ttlProfiles` name. */
export type HttpCacheTtlFactory = (context: ExecutionContext) => TtlOption | Promise<TtlOption>;

/** What `@CacheTTL` and `@CachePublic` return: a decorator for a route handler or a controller. */
export type HttpCacheDecorator = MethodDecorator & ClassDecorator;

/**
 * Replaces the URL as what identifies a GET route's cached response (`HttpCacheInterceptor`), like
 * `@nestjs/cache-manager`'s `@CacheKey`. The response is still kept apart per principal and per `Vary`
 * header values: the key only says which resource it is. A key that is not a short
 * `[A-Za-z0-9_-.]` name is hashed (see the README, "Keys"); a factory may return `undefined` to skip
 * the cache for a request. Note that requests with different query strings share the entry.
 *
 * @example
 * @Get('latest')
 * @CacheKey('posts-latest')
 * latest() { ... }
 */
export function CacheKey(key: string | HttpCacheKeyFactory): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    if (!(typeof key === 'function' || (typeof key === 'string' && key.length > 0))) {
      throw new RedisCacheConfigError(
        `@CacheKey on ${where(target, propertyKey)}: key must be a non-empty string or a function of the ExecutionContext`,
      );
    }
    SetMetadata(HTTP_CACHE_KEY_METADATA, key)(target, propertyKey, descriptor);
  };
}

/**
 * How long `HttpCacheInterceptor` keeps a route's responses (on a handler, or on a controller for all
 * its routes; the handler's wins): **seconds**, a duration string (`'90s'`, `'5m'`) or a `ttlProfiles`
 * name, as everywhere in this module, or a function of the ExecutionContext returning one.
 * `@nestjs/cache-manager`'s `@CacheTTL` takes **milliseconds**: when porting, `@CacheTTL(30_000)`
 * becomes `@CacheTTL(30)` or `@CacheTTL('30s')`. A malformed TTL fails where the class is defined.
 *
 * @example
 * @Get()
 * @CacheTTL('5m')
 * list() { ... }
 */
export function CacheTTL(ttl: TtlOption | HttpCacheTtlFactory): HttpCacheDecorator {
  return ((target: object, propertyKey?: string | symbol, descriptor?: PropertyDescriptor) => {
    if (typeof ttl !== 'function') checkHttpCacheTtl(ttl, `@CacheTTL on ${where(target, propertyKey)}: ttl`);
    SetMetadata(HTTP_CACHE_TTL_METADATA, ttl)(target, propertyKey as string, descriptor as PropertyDescriptor);
  }) as HttpCacheDecorator;
}

/**
 * Declares that a route's (or every route of a controller's) responses are the same whoever asks, so
 * `HttpCacheInterceptor` shares one cached response between all requests, authenticated or not.
 * Without it, requests with a credential header or a session cookie get responses cached per
 * principal, or none. `@CachePublic(false)` on a handler undoes it for that route.
 *
 * @example
 * @CachePublic()
 * @Get('catalog')
 * catalog() { ... }
 */
export function CachePublic(isPublic = true): HttpCacheDecorator {
  return SetMetadata(HTTP_CACHE_PUBLIC_METADATA, isPublic);
}

function where(target: object, propertyKey: string | symbol | undefined): string {
  const className = typeof target === 'function' ? target.name : target.constructor.name;
  return propertyKey === undefined ? className : `${className}.${String(propertyKey)}`;
}
