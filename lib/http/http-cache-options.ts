import type { ExecutionContext, ValueProvider } from '@nestjs/common';
import { RedisCacheConfigError } from '../errors.js';
import type { TtlOption } from '../options/redis-cache-options.interface.js';
import { checkHttpCacheTtl } from './http-cache-ttl.js';

/**
 * Injection token of the `HttpCacheOptions` every `HttpCacheInterceptor` of a module reads (optional:
 * without it the safe defaults apply). Register it with `provideHttpCacheOptions`.
 */
export const HTTP_CACHE_OPTIONS = Symbol('nestjs-redis-cache:HTTP_CACHE_OPTIONS');

/** Who is asking, as the principal hook reports it; `undefined`, `null` or `''` means "unknown". */
export type HttpCachePrincipal = string | number | null | undefined;

/** The request as the principal hook receives it: the platform's own (Express `Request`, Fastify `FastifyRequest`). */
export interface HttpCacheRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * Options of `HttpCacheInterceptor`, given module-wide with `provideHttpCacheOptions(...)` or per use
 * with `HttpCacheInterceptor.withOptions(...)` (whose fields win).
 *
 * @example
 * provideHttpCacheOptions<Request & { user?: { id: string } }>({
 *   principal: (request) => request.user?.id, // set by your auth guard, which runs before interceptors
 *   anonymousCookies: ['theme', 'consent'],
 *   ttl: '5m',
 * })
 */
export interface HttpCacheOptions<TRequest extends object = HttpCacheRequest> {
  /**
   * Says who an authenticated request (one with a credential header or a session cookie) is. Its
   * responses are then cached per principal (the id is hashed into the key, never written raw). When
   * it is absent, or returns `undefined`, `null` or `''`, authenticated requests are not cached at
   * all (`X-Cache: BYPASS`), except on `@CachePublic()` routes. Default: absent.
   */
  principal?: (request: TRequest, context: ExecutionContext) => HttpCachePrincipal | Promise<HttpCachePrincipal>;
  /**
   * Names of cookies that identify nobody and do not change responses (`theme`, `consent`, analytics
   * ids), compared case-sensitively as browsers send them. A request whose cookies are all listed
   * counts as anonymous; any other cookie makes it an authenticated request. Default `[]`: every
   * cookie is treated as a session cookie.
   */
  anonymousCookies?: readonly string[];
  /**
   * Request headers that carry a credential: a request with any of them is authenticated. Add your
   * API-key header here (`'x-api-key'`). Case-insensitive. Default `['authorization']`.
   */
  credentialHeaders?: readonly string[];
  /**
   * TTL of cached responses when the route has no `@CacheTTL`: seconds, a duration (`'5m'`) or a
   * `ttlProfiles` name. Default: the module's `ttl`.
   */
  ttl?: TtlOption;
}

/** `HttpCacheOptions` with defaults applied, as the interceptor uses them. */
export interface ResolvedHttpCacheOptions {
  readonly principal: ((request: unknown, context: ExecutionContext) => unknown) | undefined;
  /** As given (cookie names are case-sensitive); empty means every cookie is a session cookie. */
  readonly anonymousCookies: ReadonlySet<string>;
  /** Lower-case header names. */
  readonly credentialHeaders: readonly string[];
  readonly ttl: TtlOption | undefined;
}

/**
 * The provider of `HTTP_CACHE_OPTIONS`. Put it in the module whose controllers use the interceptor
 * (the root module for `APP_INTERCEPTOR`), or export it from a `@Global()` module: an interceptor that
 * cannot see it runs with the defaults, which never share an authenticated response.
 *
 * @example
 * @Module({
 *   providers: [
 *     provideHttpCacheOptions({ principal: (request: AuthedRequest) => request.user?.id }),
 *     { provide: APP_INTERCEPTOR, useClass: HttpCacheInterceptor },
 *   ],
 * })
 * export class AppModule {}
 */
export function provideHttpCacheOptions<TRequest extends object = HttpCacheRequest>(
  options: HttpCacheOptions<TRequest>,
): ValueProvider<HttpCacheOptions<TRequest>> {
  resolveHttpCacheOptions(options as HttpCacheOptions<object>, 'provideHttpCacheOptions');
  return { provide: HTTP_CACHE_OPTIONS, useValue: options };
}

/** Applies defaults and checks every field; throws a RedisCacheConfigError naming the field. */
export function resolveHttpCacheOptions(
  options: HttpCacheOptions<object> | undefined,
  where: string,
): ResolvedHttpCacheOptions {
  const { principal, anonymousCookies = [], credentialHeaders = ['authorization'], ttl } = options ?? {};
  if (principal !== undefined && typeof principal !== 'function') {
    throw new RedisCacheConfigError(`${where}: principal must be a function of the request`);
  }
  const names = (list: unknown, field: string): string[] => {
    if (!Array.isArray(list) || !list.every((name) => typeof name === 'string' && name.length > 0)) {
      throw new RedisCacheConfigError(`${where}: ${field} must be an array of non-empty names`);
    }
    return list as string[];
  };
  if (ttl !== undefined) checkHttpCacheTtl(ttl, `${where}: ttl`);
  return {
    principal: principal as ResolvedHttpCacheOptions['principal'],
    anonymousCookies: new Set(names(anonymousCookies, 'anonymousCookies')),
    credentialHeaders: names(credentialHeaders, 'credentialHeaders').map((name) => name.toLowerCase()),
    ttl,
  };
}
