import { Test, TestingModule } from '@nestjs/testing';
import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { App } from 'supertest/types';
import { CacheService } from 'nestjs-redis-cache';
import { AppModule } from './../src/app.module';
import { AppService } from './../src/app.service';

describe('AppController (e2e)', () => {
  let app: INestApplication<App>;

  beforeAll(async () => {
    const moduleFixture: TestingModule = await Test.createTestingModule({
      imports: [AppModule],
    }).compile();

    app = moduleFixture.createNestApplication();
    await app.init();
    await app.get(CacheService).clear();
    await app.get(AppService).sessions.clear();
  });

  afterAll(async () => {
    await app.close();
  });

  it('/items/:id (GET): a cached service method, MISS then HIT', async () => {
    const first = await request(app.getHttpServer()).get('/items/1').expect(200);
    const second = await request(app.getHttpServer()).get('/items/1').expect(200);
    expect([first.headers['x-cache'], second.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect(second.body).toEqual(first.body);
    expect(app.get(AppService).loads).toBe(1);
  });

  it('/ (GET): a cached route handler, MISS then HIT', async () => {
    const first = await request(app.getHttpServer()).get('/').expect(200);
    const second = await request(app.getHttpServer()).get('/').expect(200);
    expect([first.headers['x-cache'], second.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect(second.text).toBe('Hello World!');
    expect(app.get(AppService).hellos).toBe(1);
  });

  it('/sessions/:token (GET): a method of the named cache, MISS then HIT', async () => {
    const first = await request(app.getHttpServer()).get('/sessions/abc').expect(200);
    const second = await request(app.getHttpServer()).get('/sessions/abc').expect(200);
    expect([first.headers['x-cache'], second.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect(second.body).toEqual(first.body);
    expect(app.get(AppService).sessionLoads).toBe(1);
    expect(await app.get(AppService).sessions.get('session:abc')).toEqual(first.body);
  });
});
