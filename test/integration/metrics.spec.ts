// Metrics: every decorated call recorded as hit / miss / bypass / error with its latency, per name;
// CacheMetricsInterceptor's X-Cache header and per-route counters over real HTTP.
import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Param,
  ParseIntPipe,
  UseInterceptors,
  type INestApplication,
} from '@nestjs/common';
import { Observable, of } from 'rxjs';
import request from 'supertest';
import { Cacheable, CacheMetricsInterceptor, CacheService } from 'nestjs-redis-cache';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { delay } from '../support/timing.js';

@Injectable()
class CatalogService {
  @Cacheable({ key: 'product:{0}' })
  async product(id: number): Promise<{ id: number }> {
    await delay(30);
    return { id };
  }

  @Cacheable({ key: 'price:{0}', condition: (id: number) => id > 0 })
  async price(id: number): Promise<number> {
    return id * 10;
  }

  @Cacheable({ key: 'fn:{0}' })
  async unencodable(id: number): Promise<{ id: number; fn: () => void }> {
    return { id, fn: () => undefined };
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

  @Get('prices/:id')
  async price(@Param('id', ParseIntPipe) id: number): Promise<{ price: number }> {
    return { price: await this.catalog.price(id) };
  }

  @Get('bundle/:a/:b')
  async bundle(@Param('a', ParseIntPipe) a: number, @Param('b', ParseIntPipe) b: number): Promise<unknown[]> {
    return [await this.catalog.product(a), await this.catalog.product(b)];
  }

  @Get('health')
  health(): { ok: boolean } {
    return { ok: true };
  }

  @Get('stream/:id')
  @Cacheable({ key: 'stream:{0}' })
  stream(@Param('id', ParseIntPipe) id: number): Observable<{ id: number }> {
    return of({ id });
  }
}

describe('metrics', () => {
  let app: INestApplication;
  let cache: CacheService;
  let catalog: CatalogService;
  let ns: string;
  const redis = rawRedis();

  beforeEach(async () => {
    ns = uniqueNamespace('metrics');
    app = await createTestApp({ controllers: [ShopController], providers: [CatalogService], cache: { namespace: ns } });
    cache = app.get(CacheService);
    catalog = app.get(CatalogService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  describe('per cache name', () => {
    it('counts hits and misses with hitRate and latency (count, p50, p99)', async () => {
      await catalog.product(1); // miss, ~30 ms
      for (let i = 0; i < 9; i++) await catalog.product(1); // hits, fast
      const stats = cache.stats().byName['CatalogService.product'];
      expect(stats).toMatchObject({ hits: 9, misses: 1, bypasses: 0, errors: 0, hitRate: 0.9 });
      expect(stats.latency.count).toBe(10);
      expect(stats.latency.p50Ms).toBeGreaterThan(0);
      expect(stats.latency.p50Ms).toBeLessThan(25);
      expect(stats.latency.p99Ms).toBeGreaterThanOrEqual(25);
      expect(stats.latency.maxMs).toBeGreaterThanOrEqual(stats.latency.p99Ms);
    });

    it('counts a call whose condition is false as a bypass', async () => {
      await catalog.price(-1);
      await catalog.price(-1);
      await catalog.price(2);
      expect(cache.stats().byName['CatalogService.price']).toMatchObject({ bypasses: 2, misses: 1, hits: 0 });
      expect(cache.stats().byName['CatalogService.price'].latency.count).toBe(3);
    });

    it('counts an undecodable payload as an error (the source answers, the entry is replaced)', async () => {
      await redis.set(`${ns}:product:4`, 'not a cache payload', 'PX', 60_000);
      expect(await catalog.product(4)).toEqual({ id: 4 });
      const stats = cache.stats().byName['CatalogService.product'];
      expect(stats.errors).toBe(1);
      expect(stats).toMatchObject({ hits: 0, misses: 0 });
      expect(stats.latency.count).toBe(1);
      expect(cache.stats().errors).toBe(1);
      // the garbage is gone and the fresh value is served next
      expect(await catalog.product(4)).toEqual({ id: 4 });
      expect(cache.stats().byName['CatalogService.product'].hits).toBe(1);
    });

    it('counts a result that cannot be encoded as an error and returns it uncached', async () => {
      const result = await catalog.unencodable(1);
      expect(typeof result.fn).toBe('function');
      expect(await redis.exists(`${ns}:fn:1`)).toBe(0);
      expect(cache.stats().byName['CatalogService.unencodable'].errors).toBe(1);
    });

    it('totals add up across names', async () => {
      await catalog.product(1);
      await catalog.product(1);
      await catalog.price(-1);
      await catalog.price(3);
      const stats = cache.stats();
      expect(stats).toMatchObject({ hits: 1, misses: 2, bypasses: 1, errors: 0 });
      expect(stats.hitRate).toBeCloseTo(1 / 3, 3);
    });
  });

  describe('CacheMetricsInterceptor', () => {
    const get = (path: string) => request(app.getHttpServer()).get(path);

    it('X-Cache: MISS, then HIT; counted per route', async () => {
      const miss = await get('/shop/products/1').expect(200, { id: 1 });
      expect(miss.headers['x-cache']).toBe('MISS');
      const hit = await get('/shop/products/1').expect(200, { id: 1 });
      expect(hit.headers['x-cache']).toBe('HIT');
      await get('/shop/products/2').expect(200);
      const route = cache.stats().byRoute['GET /shop/products/:id'];
      expect(route).toMatchObject({ hits: 1, misses: 2, hitRate: 0.3333 });
      expect(route.latency.count).toBe(3);
    });

    it('X-Cache: BYPASS when the condition is false', async () => {
      const res = await get('/shop/prices/-1').expect(200, { price: -10 });
      expect(res.headers['x-cache']).toBe('BYPASS');
      expect(cache.stats().byRoute['GET /shop/prices/:id']).toMatchObject({ bypasses: 1 });
    });

    it('no X-Cache header (and no route counters) for a route that made no cached call', async () => {
      const res = await get('/shop/health').expect(200);
      expect(res.headers['x-cache']).toBeUndefined();
      expect(cache.stats().byRoute['GET /shop/health']).toBeUndefined();
    });

    it('a response is a MISS when any of its cached calls missed, a HIT when all hit', async () => {
      await catalog.product(1);
      expect((await get('/shop/bundle/1/2').expect(200)).headers['x-cache']).toBe('MISS');
      expect((await get('/shop/bundle/1/2').expect(200)).headers['x-cache']).toBe('HIT');
    });

    it('concurrent requests each get their own header', async () => {
      await catalog.product(1);
      const [hit, miss] = await Promise.all([get('/shop/products/1'), get('/shop/products/9')]);
      expect(hit.headers['x-cache']).toBe('HIT');
      expect(miss.headers['x-cache']).toBe('MISS');
    });

    it('a cached handler returning an Observable gets the header too', async () => {
      expect((await get('/shop/stream/1').expect(200, { id: 1 })).headers['x-cache']).toBe('MISS');
      expect((await get('/shop/stream/1').expect(200, { id: 1 })).headers['x-cache']).toBe('HIT');
      expect(cache.stats().byRoute['GET /shop/stream/:id']).toMatchObject({ hits: 1, misses: 1 });
    });
  });
});
