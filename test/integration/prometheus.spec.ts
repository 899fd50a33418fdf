// RedisCachePrometheusModule in a real app on real Redis: the series a miss, a hit, an L1 hit, a lease
// wait and a Redis outage produce, read back over HTTP from GET /metrics (Express).
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Controller,
  Get,
  Injectable,
  Param,
  ParseIntPipe,
  UseInterceptors,
  type INestApplication,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Registry } from 'prom-client';
import request from 'supertest';
import {
  Cacheable,
  CacheMetricsInterceptor,
  CacheService,
  RedisCacheModule,
  type RedisCacheModuleOptions,
} from 'nestjs-redis-cache';
import { RedisCachePrometheusModule } from 'nestjs-redis-cache/prometheus';
import { createSampleApp } from '../../sample-app/create-sample-app.js';
import { waitFor } from '../support/load-helpers.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis, type OwnRedis } from '../support/own-redis.js';
import { rawRedis, standaloneOnly, testRedisConnection, uniqueNamespace } from '../support/test-app.js';
import { delay } from '../support/timing.js';

@Injectable()
class CatalogService {
  loadMs = 0;

  @Cacheable({ key: 'product:{0}' })
  async product(id: number): Promise<{ id: number }> {
    await delay(this.loadMs);
    return { id };
  }

  @Cacheable({ key: 'kept:{0}', l1: { max: 100, ttl: 60 } })
  async kept(id: number): Promise<{ id: number }> {
    return { id };
  }
}

@UseInterceptors(CacheMetricsInterceptor)
@Controller('shop')
class ShopController {
  constructor(private readonly catalog: CatalogService) {}

  @Get('products/:id')
  product(@Param('id', ParseIntPipe) id: number): Promise<{ id: number }> {
    return this.catalog.product(id);
  }
}

/**
 * An app with the cache and the Prometheus module on `registry`. Not createTestApp: that one takes no
 * imports. commandTimeout 1 s as there (a loaded machine stalls a command past 250 ms now and then).
 */
async function createApp(registry: Registry, cache: RedisCacheModuleOptions): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      RedisCacheModule.forRoot({ redis: testRedisConnection(), commandTimeout: 1_000, ...cache }),
      RedisCachePrometheusModule.forRoot({ registry }),
    ],
    providers: [CatalogService],
    controllers: [ShopController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

/** GET /metrics over HTTP: its sample lines (no HELP/TYPE) that contain every one of `parts`. */
async function scrape(app: INestApplication, ...parts: string[]): Promise<string[]> {
  const res = await request(app.getHttpServer()).get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return res.text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#') && parts.every((part) => line.includes(part)));
}

const P = 'nestjs_redis_cache_';
const product = 'cache="default",name="CatalogService.product"';

describe('Prometheus series of a real app', () => {
  let registry: Registry;
  let apps: INestApplication[];
  let own: OwnRedis | undefined;

  beforeEach(() => {
    registry = new Registry();
    apps = [];
  });
  afterEach(async () => {
    for (const app of apps) await app.close();
    await own?.stop();
    own = undefined;
    // Every app closed: the last registration removed the series.
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  const start = async (cache: RedisCacheModuleOptions) => {
    const app = await createApp(registry, cache);
    apps.push(app);
    return app;
  };

  it('a miss then a hit over HTTP: calls, their durations, the load and the route', async () => {
    const app = await start({ namespace: uniqueNamespace('prometheus') });
    app.get(CatalogService).loadMs = 30;
    expect((await request(app.getHttpServer()).get('/shop/products/1')).headers['x-cache']).toBe('MISS');
    expect((await request(app.getHttpServer()).get('/shop/products/1')).headers['x-cache']).toBe('HIT');

    expect(await scrape(app, `${P}calls_total`)).toEqual([
      `${P}calls_total{${product},outcome="miss",tier="redis"} 1`,
      `${P}calls_total{${product},outcome="hit",tier="redis"} 1`,
    ]);
    expect(await scrape(app, `${P}call_duration_seconds_count`)).toEqual([
      `${P}call_duration_seconds_count{${product},tier="redis"} 2`,
    ]);
    expect(await scrape(app, `${P}loads_total`)).toEqual([
      `${P}loads_total{${product},background="false",failed="false"} 1`,
    ]);
    expect(await scrape(app, `${P}load_duration_seconds_count`)).toEqual([
      `${P}load_duration_seconds_count{${product}} 1`,
    ]);
    // The load waited 30 ms: its one observation is in no bucket below 25 ms.
    expect(await scrape(app, `${P}load_duration_seconds_bucket`, 'le="0.025"')).toEqual([
      `${P}load_duration_seconds_bucket{le="0.025",${product}} 0`,
    ]);
    expect(await scrape(app, `${P}route_requests_total`)).toEqual([
      `${P}route_requests_total{route="GET /shop/products/:id",outcome="miss"} 1`,
      `${P}route_requests_total{route="GET /shop/products/:id",outcome="hit"} 1`,
    ]);
    expect(await scrape(app, `${P}route_duration_seconds_count`)).toEqual([
      `${P}route_duration_seconds_count{route="GET /shop/products/:id"} 2`,
    ]);
    expect(await scrape(app, `${P}errors_total`)).toEqual([]);
    // The key (`<namespace>:product:1`) is in no label.
    expect((await request(app.getHttpServer()).get('/metrics')).text).not.toContain('product:1');
  });

  it('an L1 hit is counted on tier l1 and not timed; a delete counts the invalidation and the L1 drop', async () => {
    const app = await start({ namespace: uniqueNamespace('prometheus-l1') });
    const catalog = app.get(CatalogService);
    const cache = app.get(CacheService);
    const kept = 'cache="default",name="CatalogService.kept"';
    // L1 serves once this instance has subscribed and heard the presence marker settle.
    await waitFor('L1 to serve', async () => {
      await catalog.kept(7);
      return (cache.stats().byName['CatalogService.kept']?.l1Hits ?? 0) > 0;
    });
    const l1Hits = async () => Number((await scrape(app, `${P}calls_total{${kept}`, 'tier="l1"'))[0]?.split(' ')[1]);
    const timed = await scrape(app, `${P}call_duration_seconds_count{${kept}`);
    const before = await l1Hits();

    await catalog.kept(7);
    expect(await l1Hits()).toBe(before + 1);
    expect(await scrape(app, `${P}call_duration_seconds_count{${kept}`)).toEqual(timed);
    expect(timed.some((line) => line.includes('tier="l1"'))).toBe(false);

    expect(await cache.del('kept:7')).toBe(1);
    expect(await scrape(app, `${P}invalidations_total`)).toEqual([
      `${P}invalidations_total{cache="default",kind="keys",failed="false"} 1`,
    ]);
    expect(await scrape(app, `${P}l1_drops_total`)).toEqual([`${P}l1_drops_total{cache="default",reason="local"} 1`]);
  });

  it("a caller that waits for another instance's load is timed as a lease wait that got the value", async () => {
    // Two apps on one namespace: two instances of a service. Both publish on the process's channels,
    // and their two registrations of one registry count every event once.
    const namespace = uniqueNamespace('prometheus-lease');
    const [first, second] = [await start({ namespace }), await start({ namespace })];
    first.get(CatalogService).loadMs = 300;
    const redis = rawRedis();
    try {
      const loading = first.get(CatalogService).product(5);
      await waitFor(
        'the first load to hold the lease',
        async () => (await redis.exists(`${namespace}:product:5`)) === 1,
      );
      expect(await second.get(CatalogService).product(5)).toEqual({ id: 5 });
      await loading;
    } finally {
      await redis.quit();
    }

    expect(await scrape(second, `${P}lease_wait_seconds_count`)).toEqual([
      `${P}lease_wait_seconds_count{${product},result="value"} 1`,
    ]);
    expect(await scrape(first, `${P}calls_total`)).toEqual([
      `${P}calls_total{${product},outcome="miss",tier="redis"} 1`,
      `${P}calls_total{${product},outcome="hit",tier="redis"} 1`,
    ]);
    expect(await scrape(first, `${P}loads_total`)).toEqual([
      `${P}loads_total{${product},background="false",failed="false"} 1`,
    ]);
  });

  it(
    'a Redis outage: redis_up 0, each failed read an error, the calls of outcome error',
    async () => {
      own = await startOwnRedis();
      const app = await start({
        redis: own.connection,
        namespace: uniqueNamespace('prometheus-down'),
        commandTimeout: 200,
      });
      await own.kill();
      const catalog = app.get(CatalogService);
      expect(await catalog.product(3)).toEqual({ id: 3 });
      expect(await catalog.product(3)).toEqual({ id: 3 });

      expect(await scrape(app, `${P}redis_up`)).toEqual([`${P}redis_up{cache="default"} 0`]);
      expect(await scrape(app, `${P}errors_total`)).toEqual([`${P}errors_total{${product},operation="read"} 2`]);
      expect(await scrape(app, `${P}calls_total`)).toEqual([
        `${P}calls_total{${product},outcome="error",tier="redis"} 2`,
      ]);
      // The method still ran for both: two loads, neither failed.
      expect(await scrape(app, `${P}loads_total`)).toEqual([
        `${P}loads_total{${product},background="false",failed="false"} 2`,
      ]);
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );
});

describe('the sample app', () => {
  standaloneOnly('createSampleApp takes a URL or cluster nodes; one topology shows the wiring')(
    'serves /metrics with the series of the requests it answered',
    async () => {
      const dbDir = mkdtempSync(join(tmpdir(), 'prometheus-sample-app-'));
      const namespace = uniqueNamespace('prometheus-sample-app');
      const app = await createSampleApp({
        redisUrl: testRedisConnection() as string,
        dbPath: join(dbDir, 'sample-app.db'),
        queryDelayMs: 0,
        namespace,
        logger: false,
      });
      try {
        await request(app.getHttpServer()).get('/users/1').expect(200);
        await request(app.getHttpServer()).get('/users/1').expect(200);
        const res = await request(app.getHttpServer()).get('/metrics');
        expect(res.status).toBe(200);
        const lines = res.text.split('\n');
        expect(lines).toContain(`${P}route_requests_total{route="GET /users/:id",outcome="miss"} 1`);
        expect(lines).toContain(`${P}route_requests_total{route="GET /users/:id",outcome="hit"} 1`);
      } finally {
        await app.get(CacheService).clear();
        await app.close();
        rmSync(dbDir, { recursive: true, force: true });
      }
    },
  );
});
