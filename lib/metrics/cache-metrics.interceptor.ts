import { Injectable, Optional, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants.js';
import { tap, type Observable } from 'rxjs';
import { CacheMetrics, traceRequest, type RequestCacheTrace } from './cache-metrics.js';
import type { CacheOutcome } from './cache-outcome.js';
import { publishRoute } from '../events/cache-event-publisher.js';

/** The `X-Cache` header values. */
export type XCacheHeader = 'HIT' | 'MISS' | 'BYPASS';

interface HttpRequest {
  method?: string;
  url?: string;
  route?: { path?: string };
  routeOptions?: { url?: string };
}

interface HttpResponse {
  headersSent?: boolean;
  sent?: boolean;
  setHeader?: (name: string, value: string) => void;
  header?: (name: string, value: string) => void;
}

/**
 * Sets `X-Cache: HIT | MISS | BYPASS` on HTTP responses whose handler made cached calls, and counts
 * per route (`stats().byRoute['GET /users/:id']`). A response is a HIT when every cached call it
 * made was served from the cache, a MISS when any went to the source, BYPASS when all skipped it.
 * Works with Express and Fastify; apply it globally (`APP_INTERCEPTOR`) or with `@UseInterceptors`.
 *
 * @example
 * @UseInterceptors(CacheMetricsInterceptor)
 * @Controller('users')
 * export class UsersController { ... }
 */
@Injectable()
export class CacheMetricsInterceptor implements NestInterceptor {
  /** `metrics`: the default cache's, where route counts go; without one (named caches only) none are kept. */
  constructor(@Optional() private readonly metrics?: CacheMetrics) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const request = http.getRequest<HttpRequest>();
    const response = http.getResponse<HttpResponse>();
    const trace: RequestCacheTrace = { outcomes: [] };
    const started = performance.now();
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const header = decide(trace.outcomes);
      if (!header) return;
      publishRoute(
        this.metrics,
        routeOf(request, context),
        routeOutcome(header, trace.outcomes),
        performance.now() - started,
      );
      setHeader(response, header);
    };
    // Nest binds the handler to the async context current when handle() is called, so the
    // decorated calls it makes append to this request's trace.
    return traceRequest(trace, () => next.handle()).pipe(tap({ next: finish, complete: finish, error: finish }));
  }
}

function decide(outcomes: readonly CacheOutcome[]): XCacheHeader | undefined {
  if (outcomes.length === 0) return undefined;
  if (outcomes.some((outcome) => outcome === 'miss' || outcome === 'error')) return 'MISS';
  if (outcomes.every((outcome) => outcome === 'bypass')) return 'BYPASS';
  return 'HIT';
}

function routeOutcome(header: XCacheHeader, outcomes: readonly CacheOutcome[]): CacheOutcome {
  if (header === 'HIT') return outcomes.includes('stale') ? 'stale' : 'hit';
  if (header === 'BYPASS') return 'bypass';
  return outcomes.includes('error') ? 'error' : 'miss';
}

function routeOf(request: HttpRequest, context: ExecutionContext): string {
  const path =
    request.route?.path ??
    request.routeOptions?.url ??
    joinPaths(
      Reflect.getMetadata(PATH_METADATA, context.getClass()),
      Reflect.getMetadata(PATH_METADATA, context.getHandler()),
    );
  return `${request.method ?? 'GET'} ${path}`;
}

function joinPaths(...parts: unknown[]): string {
  const joined = parts
    .flatMap((part) => (Array.isArray(part) ? part.slice(0, 1) : [part]))
    .filter((part): part is string => typeof part === 'string' && part.length > 0)
    .map((part) => part.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/');
  return `/${joined}`;
}

function setHeader(response: HttpResponse, value: XCacheHeader): void {
  if (response.headersSent || response.sent) return;
  if (typeof response.setHeader === 'function') response.setHeader('X-Cache', value);
  else response.header?.('X-Cache', value);
}
