// Cache decorators on controller route handlers, over real HTTP (Express): params through
// ParseIntPipe, guards (including ones reading @SetMetadata) and the route metadata all keep
// working whichever side of the cache decorator they are written on.
import 'reflect-metadata';
import {
  Body,
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  Injectable,
  Param,
  ParseIntPipe,
  Put,
  SetMetadata,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, of } from 'rxjs';
import request from 'supertest';
import { Cacheable, CacheEvict, CachePut, CacheService } from 'nestjs-redis-cache';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { holdsValue } from '../support/redis-keys.js';

/** Lets a request through when its `x-role` header equals the handler's `role` metadata. */
@Injectable()
class RoleGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}
  canActivate(context: ExecutionContext): boolean {
    const role = this.reflector.get<string>('role', context.getHandler());
    return context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-role'] === role;
  }
}

const runs: Record<string, number> = {};
const ran = (name: string) => (runs[name] = (runs[name] ?? 0) + 1);

@Controller('items')
class ItemsController {
  // Cache decorator last (closest to the method): applied first.
  @Get(':id')
  @UseGuards(RoleGuard)
  @SetMetadata('role', 'reader')
  @Header('Cache-Control', 'no-store')
  @Cacheable({ key: 'item:{0}' })
  async findOne(@Param('id', ParseIntPipe) id: number): Promise<{ id: number; type: string }> {
    ran('findOne');
    return { id, type: typeof id };
  }

  // Cache decorator first (farthest from the method): applied last.
  @Cacheable({ key: 'item-admin:{0}' })
  @Get('admin/:id')
  @UseGuards(RoleGuard)
  @SetMetadata('role', 'admin')
  async findAsAdmin(@Param('id', ParseIntPipe) id: number): Promise<{ id: number; admin: true }> {
    ran('findAsAdmin');
    return { id, admin: true };
  }

  @Get('stream/:id')
  @Cacheable({ key: 'item-stream:{0}' })
  stream(@Param('id', ParseIntPipe) id: number): Observable<{ id: number; streamed: number }> {
    ran('stream');
    return of({ id, streamed: runs.stream });
  }

  @CachePut({ key: 'item:{0}' })
  @Put(':id')
  async replace(
    @Param('id', ParseIntPipe) id: number,
    @Body() body: { name: string },
  ): Promise<{ id: number; type: string; name: string }> {
    return { id, type: 'number', name: body.name };
  }

  @Delete(':id')
  @HttpCode(204)
  @CacheEvict({ key: 'item:{0}' })
  async remove(@Param('id', ParseIntPipe) _id: number): Promise<void> {
    ran('remove');
  }
}

describe('cache decorators on controller route handlers (Express)', () => {
  let app: INestApplication;
  let ns: string;
  const redis = rawRedis();
  const has = (key: string) => holdsValue(redis, `${ns}:${key}`);

  beforeAll(async () => {
    ns = uniqueNamespace('http');
    app = await createTestApp({ controllers: [ItemsController], providers: [RoleGuard], cache: { namespace: ns } });
  });
  afterAll(async () => {
    await app.close();
    await redis.quit();
  });

  it('caches a @Get(":id") handler; ParseIntPipe turns the param into a number; @Header survives', async () => {
    const first = await request(app.getHttpServer()).get('/items/5').set('x-role', 'reader').expect(200);
    expect(first.body).toEqual({ id: 5, type: 'number' });
    expect(first.headers['cache-control']).toBe('no-store');
    const second = await request(app.getHttpServer()).get('/items/5').set('x-role', 'reader').expect(200);
    expect(second.body).toEqual({ id: 5, type: 'number' });
    expect(second.headers['cache-control']).toBe('no-store');
    expect(runs.findOne).toBe(1);
    expect(await has('item:5')).toBe(true);
  });

  it('a param ParseIntPipe rejects is a 400 and never reaches the cache', async () => {
    const before = runs.findOne;
    await request(app.getHttpServer()).get('/items/abc').set('x-role', 'reader').expect(400);
    expect(runs.findOne).toBe(before);
    expect(await has('item:abc')).toBe(false);
  });

  it('a guard that rejects still answers 403 and does not touch the cache', async () => {
    const cache = app.get(CacheService);
    const before = { runs: runs.findOne, stats: cache.stats().byName['ItemsController.findOne'] };
    await request(app.getHttpServer()).get('/items/6').expect(403);
    await request(app.getHttpServer()).get('/items/5').set('x-role', 'writer').expect(403); // cached, still refused
    expect(runs.findOne).toBe(before.runs);
    expect(await has('item:6')).toBe(false);
    expect(cache.stats().byName['ItemsController.findOne']).toEqual(before.stats);
  });

  it('route, guard and custom metadata survive with the cache decorator written above them', async () => {
    await request(app.getHttpServer()).get('/items/admin/2').set('x-role', 'reader').expect(403);
    expect(await has('item-admin:2')).toBe(false);
    await request(app.getHttpServer()).get('/items/admin/2').set('x-role', 'admin').expect(200, { id: 2, admin: true });
    await request(app.getHttpServer()).get('/items/admin/2').set('x-role', 'admin').expect(200, { id: 2, admin: true });
    expect(runs.findAsAdmin).toBe(1);
    expect(await has('item-admin:2')).toBe(true);
  });

  it('an Observable handler is cached and served', async () => {
    await request(app.getHttpServer()).get('/items/stream/1').expect(200, { id: 1, streamed: 1 });
    await request(app.getHttpServer()).get('/items/stream/1').expect(200, { id: 1, streamed: 1 });
    expect(runs.stream).toBe(1);
  });

  it('@CachePut on a @Put handler writes what the next @Get serves; @CacheEvict on a @Delete with @HttpCode evicts', async () => {
    await request(app.getHttpServer()).put('/items/7').send({ name: 'seven' }).expect(200);
    const before = runs.findOne;
    await request(app.getHttpServer())
      .get('/items/7')
      .set('x-role', 'reader')
      .expect(200, { id: 7, type: 'number', name: 'seven' });
    expect(runs.findOne).toBe(before);

    await request(app.getHttpServer()).delete('/items/7').expect(204);
    expect(runs.remove).toBe(1);
    expect(await has('item:7')).toBe(false);
    await request(app.getHttpServer()).get('/items/7').set('x-role', 'reader').expect(200, { id: 7, type: 'number' });
    expect(runs.findOne).toBe(before + 1);
  });
});
