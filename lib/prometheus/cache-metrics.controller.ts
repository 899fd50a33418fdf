import { Controller, Get, Header, type Type } from '@nestjs/common';
import type { Registry } from 'prom-client';

/**
 * A controller serving `registry`'s text at `path`. Built per `forRoot`, since a route's path is
 * fixed when its decorator runs. Returning the text with a `@Header` works on Express and Fastify alike.
 */
export function cacheMetricsControllerFor(path: string, registry: Registry): Type<unknown> {
  @Controller()
  class CacheMetricsController {
    @Get(path)
    @Header('Content-Type', registry.contentType)
    metrics(): Promise<string> {
      return registry.metrics();
    }
  }
  return CacheMetricsController;
}
