// RedisCachePrometheusModule on its own (no cache, no Redis): collects from init to shutdown and serves
// the registry's text over HTTP, on Express and on Fastify.
import 'reflect-metadata';
import { channel } from 'node:diagnostics_channel';
import type { INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { Registry, register } from 'prom-client';
import request from 'supertest';
import { CACHE_CHANNELS, type CacheRouteEvent } from 'nestjs-redis-cache';
import { RedisCachePrometheusModule, type RedisCachePrometheusOptions } from 'nestjs-redis-cache/prometheus';

type Platform = 'express' | 'fastify';

const ROUTES = 'nestjs_redis_cache_route_requests_total';

function publishRoute(): void {
  channel(CACHE_CHANNELS.route).publish({
    route: 'GET /users/:id',
    outcome: 'hit',
    durationMs: 3,
  } satisfies CacheRouteEvent);
}

async function createApp(platform: Platform, options?: RedisCachePrometheusOptions): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisCachePrometheusModule.forRoot(options)],
  }).compile();
  const app = moduleRef.createNestApplication(platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(), {
    logger: false,
  });
  await app.init();
  if (platform === 'fastify') await app.getHttpAdapter().getInstance().ready();
  return app;
}

describe.each<Platform>(['express', 'fastify'])('RedisCachePrometheusModule on %s', (platform) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("serves prom-client's global register at /metrics, in Prometheus' text format", async () => {
    app = await createApp(platform);
    publishRoute();
    const res = await request(app.getHttpServer()).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(register.contentType);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.text).toBe(await register.metrics());
    expect(res.text).toContain(`${ROUTES}{route="GET /users/:id",outcome="hit"} 1\n`);
  });

  it('serves the given registry at the given path', async () => {
    const registry = new Registry();
    app = await createApp(platform, { registry, path: '/internal/metrics', prefix: 'shop_' });
    publishRoute();
    expect((await request(app.getHttpServer()).get('/metrics')).status).toBe(404);
    const res = await request(app.getHttpServer()).get('/internal/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toBe(await registry.metrics());
    expect(res.text).toContain('shop_route_requests_total{route="GET /users/:id",outcome="hit"} 1\n');
    expect(register.getSingleMetric('shop_route_requests_total')).toBeUndefined();
  });

  it('with path: false, collects but serves nothing', async () => {
    const registry = new Registry();
    app = await createApp(platform, { registry, path: false });
    publishRoute();
    expect((await request(app.getHttpServer()).get('/metrics')).status).toBe(404);
    expect(await registry.getSingleMetricAsString(ROUTES)).toContain(
      `${ROUTES}{route="GET /users/:id",outcome="hit"} 1`,
    );
  });

  it('stops collecting when the application shuts down', async () => {
    const registry = new Registry();
    app = await createApp(platform, { registry });
    expect(registry.getSingleMetric(ROUTES)).toBeDefined();
    await app.close();
    app = undefined;
    expect(registry.getMetricsAsArray()).toEqual([]);
  });
});
