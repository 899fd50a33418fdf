import { Test, TestingModule } from '@nestjs/testing';
import { CacheService } from 'nestjs-redis-cache';
import { AppController } from './app.controller.js';
import { AppModule } from './app.module.js';
import { AppService } from './app.service.js';

describe('AppController', () => {
  let app: TestingModule;

  beforeAll(async () => {
    app = await Test.createTestingModule({ imports: [AppModule] }).compile();
    await app.init();
    await app.get(CacheService).clear();
  });

  afterAll(async () => {
    await app.close();
  });

  it('loads an item once, then serves it from Redis', async () => {
    const appController = app.get(AppController);
    const first = await appController.getItem('7');
    expect(await appController.getItem('7')).toEqual(first);
    expect(app.get(AppService).loads).toBe(1);
  });

  it('runs the plain method on an instance Nest did not create', async () => {
    const service = new AppService({} as CacheService); // no Nest, no cache
    await service.findItem('7');
    await service.findItem('7');
    expect(service.loads).toBe(2);
  });
});
