import {
  Inject,
  Injectable,
  Logger,
  mixin,
  Optional,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
  type Type,
} from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import { finalize, of, tap, type Observable } from 'rxjs';
import { CacheService } from '../cache.service.js';
import type { XCacheHeader } from '../metrics/cache-metrics.interceptor.js';
import type { TtlOption } from '../options/redis-cache-options.interface.js';
import { asHttpCacheRecord, type CachedHttpResponse } from './cached-http-response.js';
import { HttpCacheMetadata } from './http-cache-metadata.js';
import {
  HTTP_CACHE_OPTIONS,
  resolveHttpCacheOptions,
  type HttpCacheOptions,
  type HttpCacheRequest,
  type ResolvedHttpCacheOptions,
} from './http-cache-options.js';
import { requestHeader, whenResponseSent } from './http-platform.js';
import { isAuthenticatedRequest } from './http-request-scope.js';
import { isReplayableBody, storableResponse, type StorableResponse } from './http-response-policy.js';
import { HttpResponseKeys, principalScope, SHARED_SCOPE } from './http-response-key.js';
import { PendingResponseWrites } from './pending-response-writes.js';

/**
 * Caches the responses of GET routes in Redis, the job `@nestjs/cache-manager`'s `CacheInterceptor`
 * does (also exported under that name, so porting is an import swap), without ever serving one
 * principal's response to another:
 *
 * - Only GET requests are cached; other methods, non-HTTP contexts, `@Res()` / `@Next()` handlers
 *   (without `passthrough`) and `@Sse()` routes pass through untouched.
 * - A request with a credential header (`Authorization`) or a session cookie is cached per principal
 *   when the `principal` option says who it is, and not at all otherwise; `@CachePublic()` routes
 *   share one response between everyone. Anonymous requests share one response.
 * - A response is stored only when it was sent with a 2xx status (not 206), no `Set-Cookie`, no
 *   `Cache-Control: private` or `no-store`, and no `Vary: *`. It is judged once sent, so headers and
 *   statuses set after the handler returned (outer interceptors, session middleware, exception
 *   filters) are seen.
 * - `Vary` names the request headers the response depends on; a request is served a stored response
 *   only when it has the same values of them (see http-response-key.ts for the keys).
 * - Stored through `CacheService`: TTL with jitter, namespace, fail-open (Redis down: the handler
 *   answers), `clear('http:')` invalidates every response. `X-Cache` is `HIT`, `MISS` or `BYPASS`
 *   (an authenticated request that could not be cached), and each lookup is counted under
 *   `HTTP Controller.handler` in `stats().byName`.
 *
 * Options come from `provideHttpCacheOptions(...)` (module-wide) or `HttpCacheInterceptor.withOptions(...)`.
 * Override `trackBy` in a subclass to choose what identifies a resource (default: `@CacheKey`, else the
 * URL with its query string).
 *
 * @example
 * // One route or controller:
 * @UseInterceptors(HttpCacheInterceptor)
 * @Controller('articles')
 * export class ArticlesController { ... }
 *
 * // Every route, with authenticated responses cached per user:
 * providers: [
 *   provideHttpCacheOptions({ principal: (request: AuthedRequest) => request.user?.id }),
 *   { provide: APP_INTERCEPTOR, useClass: HttpCacheInterceptor },
 * ]
 */
@Injectable()
export class HttpCacheInterceptor implements NestInterceptor {
  /** Options a `withOptions` class carries; they win over the injected `HTTP_CACHE_OPTIONS`. */
  protected static readonly presetOptions: HttpCacheOptions<object> | undefined = undefined;

  /**
   * This interceptor with `options` (merged over `HTTP_CACHE_OPTIONS`, which they override field by
   * field), for `@UseInterceptors(...)` or `{ provide: APP_INTERCEPTOR, useClass: ... }`.
   *
   * @example
   * @UseInterceptors(HttpCacheInterceptor.withOptions({ principal: (request: AuthedRequest) => request.user?.id }))
   */
  static withOptions<TRequest extends object = HttpCacheRequest>(
    options: HttpCacheOptions<TRequest>,
  ): Type<HttpCacheInterceptor> {
    resolveHttpCacheOptions(options as HttpCacheOptions<object>, `${this.name}.withOptions`);
    class ConfiguredHttpCacheInterceptor extends (this as typeof HttpCacheInterceptor) {
      protected static override readonly presetOptions = options as HttpCacheOptions<object>;
    }
    return mixin(ConfiguredHttpCacheInterceptor);
  }

  private readonly logger = new Logger('RedisCache');
  private readonly logged = new Set<string>();
  private readonly options: ResolvedHttpCacheOptions;
  private readonly routes: HttpCacheMetadata;
  private readonly writes = new PendingResponseWrites();

  constructor(
    protected readonly cache: CacheService,
    protected readonly reflector: Reflector,
    @Optional() protected readonly httpAdapterHost: HttpAdapterHost,
    @Optional() @Inject(HTTP_CACHE_OPTIONS) options?: HttpCacheOptions<object>,
  ) {
    const preset = (this.constructor as typeof HttpCacheInterceptor).presetOptions;
    this.options = resolveHttpCacheOptions(
      preset ? { ...options, ...preset } : options,
      preset ? 'HttpCacheInterceptor.withOptions' : 'HTTP_CACHE_OPTIONS',
    );
    this.routes = new HttpCacheMetadata(reflector);
  }

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const adapter = this.httpAdapterHost?.httpAdapter;
    if (context.getType() !== 'http' || !adapter) return next.handle();
    const request = context.switchToHttp().getRequest<object>();
    const response = context.switchToHttp().getResponse<object>();
    if (adapter.getRequestMethod(request) !== 'GET' || this.routes.writesItsOwnResponse(context)) {
      return next.handle();
    }
    const resource = await this.trackBy(context);
    if (typeof resource !== 'string' || resource === '') return next.handle();

    const name = `HTTP ${context.getClass().name}.${context.getHandler().name}`;
    const scope = await this.scopeOf(request, context);
    if (scope === undefined) {
      this.mark(response, 'BYPASS');
      this.cache.events.called(name, 'read', 'bypass', 'source', performance.now(), undefined);
      return next.handle();
    }
    const keys = new HttpResponseKeys(resource, scope);
    const started = performance.now();
    await this.writes.settled(keys.route);
    const cached = await this.lookup(keys, request);
    if (cached) {
      adapter.status(response, cached.status);
      for (const [header, value] of Object.entries(cached.headers)) adapter.setHeader(response, header, value);
      this.mark(response, 'HIT');
      this.cache.events.called(name, 'read', 'hit', 'redis', started, keys.route);
      return of(cached.body);
    }

    const ttl = await this.ttlOf(context);
    this.mark(response, 'MISS');
    let result: { body: unknown } | undefined;
    return next.handle().pipe(
      tap({
        next: (body) => (result = { body }),
        // Nest sends the last value; it is judged for storing once the response is out.
        complete: () => {
          const { body } = result ?? {};
          if (!result || !isReplayableBody(body)) return;
          whenResponseSent(response, () => {
            const sent = storableResponse(response);
            if (sent) this.writes.track(keys.route, () => this.store(keys, request, sent, body, ttl, name));
          });
        },
      }),
      finalize(() => this.cache.events.called(name, 'read', 'miss', 'redis', started, keys.route)),
    );
  }

  /**
   * What identifies the resource a GET request asks for (`undefined`: do not cache it): the route's
   * `@CacheKey` if it has one, else the URL with its query string (`httpAdapter.getRequestUrl`), as
   * `@nestjs/cache-manager` does. Override it in a subclass to key differently, e.g. to leave out
   * query parameters that do not change the response. Whatever it returns, responses stay apart per
   * principal and per `Vary` values; the string is hashed into the key unless it is a short
   * `[A-Za-z0-9_-.]` name.
   *
   * @example
   * @Injectable()
   * class PathOnlyCacheInterceptor extends HttpCacheInterceptor {
   *   protected override trackBy(context: ExecutionContext): string | undefined {
   *     return context.switchToHttp().getRequest<Request>().path;
   *   }
   * }
   */
  protected trackBy(context: ExecutionContext): string | undefined | null | Promise<string | undefined | null> {
    const key = this.routes.key(context);
    if (key !== undefined) return typeof key === 'function' ? key(context) : key;
    return this.httpAdapterHost.httpAdapter.getRequestUrl(context.switchToHttp().getRequest());
  }

  /**
   * Whose responses this request may share: SHARED_SCOPE for anonymous requests and `@CachePublic()`
   * routes, the principal's own scope for an authenticated request the `principal` hook identifies,
   * `undefined` (not cached) for one it does not.
   */
  private async scopeOf(request: object, context: ExecutionContext): Promise<string | undefined> {
    if (this.routes.isPublic(context) || !isAuthenticatedRequest(request, this.options)) return SHARED_SCOPE;
    const principal = await this.options.principal?.(request, context);
    if (principal === undefined || principal === null || principal === '') return undefined;
    if (typeof principal === 'string' || (typeof principal === 'number' && Number.isFinite(principal))) {
      return principalScope(String(principal));
    }
    // An object (`request.user` instead of its id) would make every principal one: never share on it.
    this.logOnce(
      'warn',
      `principal:${typeof principal}`,
      `HttpCacheInterceptor: the principal hook returned a ${typeof principal}; it must return a string or number ` +
        'id (or undefined). Authenticated requests are not cached until it does.',
    );
    return undefined;
  }

  /** The stored response for this request, through the route's vary record when there is one. */
  private async lookup(keys: HttpResponseKeys, request: object): Promise<CachedHttpResponse | undefined> {
    const found = asHttpCacheRecord(await this.cache.get(keys.route));
    if (found?.kind !== 'vary') return found;
    // The variant key holds the names and this request's values of them: whatever is stored there was
    // sent, with that Vary, to a request that had the same values.
    const variant = asHttpCacheRecord(
      await this.cache.get(keys.variant(found.names, (name) => requestHeader(request, name))),
    );
    return variant?.kind === 'response' ? variant : undefined;
  }

  /**
   * Stores a sent response. Without `Vary` it takes the route slot; with `Vary` it goes to its variant
   * slot and the route slot records the names, so the next request knows which of its headers to key
   * by (written second: a reader that finds the record finds the variant). A route whose responses
   * change between varying and not simply overwrites the route slot: a response without `Vary` is
   * valid for any request.
   */
  private async store(
    keys: HttpResponseKeys,
    request: object,
    sent: StorableResponse,
    body: unknown,
    ttl: TtlOption | undefined,
    name: string,
  ): Promise<void> {
    const entry: CachedHttpResponse = {
      kind: 'response',
      status: sent.status,
      headers: sent.headers,
      ...(body === undefined ? {} : { body }),
    };
    try {
      if (sent.vary.length === 0) {
        await this.cache.set(keys.route, entry, { ttl });
        return;
      }
      await this.cache.set(
        keys.variant(sent.vary, (header) => requestHeader(request, header)),
        entry,
        { ttl },
      );
      await this.cache.set(keys.route, { kind: 'vary', names: sent.vary }, { ttl });
    } catch (err) {
      // CacheService fails open; what throws is a configuration error (an unknown ttl profile).
      this.logOnce('error', `store:${name}`, `${name}: the response was not cached: ${(err as Error).message}`);
    }
  }

  /** The route's `@CacheTTL` (handler, else controller), else the `ttl` option, else the module's. */
  private async ttlOf(context: ExecutionContext): Promise<TtlOption | undefined> {
    const ttl = this.routes.ttl(context);
    return typeof ttl === 'function' ? await ttl(context) : (ttl ?? this.options.ttl);
  }

  private mark(response: object, value: XCacheHeader): void {
    this.httpAdapterHost.httpAdapter.setHeader(response, 'X-Cache', value);
  }

  private logOnce(level: 'warn' | 'error', id: string, message: string): void {
    if (this.logged.has(id)) return;
    this.logged.add(id);
    this.logger[level](message);
  }
}

/**
 * `HttpCacheInterceptor` under the name `@nestjs/cache-manager` gives it, so a port is an import swap:
 * `import { CacheInterceptor, CacheKey, CacheTTL } from 'nestjs-redis-cache'`. Mind the TTL unit:
 * `@CacheTTL` here takes seconds (or `'30s'`), cache-manager's takes milliseconds.
 *
 * @example
 * @UseInterceptors(CacheInterceptor)
 * @Controller('articles')
 * export class ArticlesController { ... }
 */
export const CacheInterceptor = HttpCacheInterceptor;
export type CacheInterceptor = HttpCacheInterceptor;
