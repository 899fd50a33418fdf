import type { ExecutionContext } from '@nestjs/common';
import { RESPONSE_PASSTHROUGH_METADATA, ROUTE_ARGS_METADATA, SSE_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';
import type { Reflector } from '@nestjs/core';
import type { TtlOption } from '../options/redis-cache-options.interface.js';
import {
  HTTP_CACHE_KEY_METADATA,
  HTTP_CACHE_PUBLIC_METADATA,
  HTTP_CACHE_TTL_METADATA,
  type HttpCacheKeyFactory,
  type HttpCacheTtlFactory,
} from './http-cache.decorators.js';

/** The one reader of the HTTP cache decorators' metadata (and of the Nest metadata that rules a route out). */
export class HttpCacheMetadata {
  constructor(private readonly reflector: Reflector) {}

  /** `@CacheKey` of the handler (as `@nestjs/cache-manager`, a controller-level key is not read). */
  key(context: ExecutionContext): string | HttpCacheKeyFactory | undefined {
    return this.reflector.get<string | HttpCacheKeyFactory | undefined>(HTTP_CACHE_KEY_METADATA, context.getHandler());
  }

  /** `@CacheTTL` of the handler, else of the controller. */
  ttl(context: ExecutionContext): TtlOption | HttpCacheTtlFactory | undefined {
    return this.reflector.getAllAndOverride<TtlOption | HttpCacheTtlFactory | undefined>(HTTP_CACHE_TTL_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
  }

  /** `@CachePublic()` on the handler, else on the controller. */
  isPublic(context: ExecutionContext): boolean {
    return (
      this.reflector.getAllAndOverride<boolean | undefined>(HTTP_CACHE_PUBLIC_METADATA, [
        context.getHandler(),
        context.getClass(),
      ]) === true
    );
  }

  /**
   * True for handlers whose response is not a returned value: `@Res()` / `@Next()` without
   * `passthrough` (the handler writes the response itself) and `@Sse()` streams. Nothing to cache.
   */
  writesItsOwnResponse(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    if (Reflect.getMetadata(SSE_METADATA, handler)) return true;
    const controller = context.getClass();
    const args: Record<string, unknown> = Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, handler.name) ?? {};
    const takesResponse = Object.keys(args).some((slot) => {
      const type = Number(slot.split(':')[0]);
      return type === RouteParamtypes.RESPONSE || type === RouteParamtypes.NEXT;
    });
    return takesResponse && !Reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, controller, handler.name);
  }
}
