import { Test, TestingModule } from '@nestjs/testing';
import { getCacheTesting, RedisCacheTestingModule } from 'nestjs-redis-cache';
import { AppController } from './app.controller';
import { AppService } from './app.service';

describe('AppController', () => {
  let app: TestingModule;

  beforeEach(async () => {
    // The generated unit test, with the app's caches in process: no Redis, a fresh store per test.
    app = await Test.createTestingModule({
      imports: [
        RedisCacheTestingModule.forRoot({ ttl: '1m' }),
        RedisCacheTestingModule.forRoot({ name: 'sessions', namespace: 'sessions', ttlProfiles: { session: '30m' } }),
      ],
      controllers: [AppController],
      providers: [AppService],
    }).compile();
    await app.init();
  });

  afterEach(async () => {
    await app.close();
  });

  it('loads an item once, then serves it from the cache until its TTL has passed', async () => {
    const appController = app.get(AppController);
    const cache = getCacheTesting(app);
    const first = await appController.getItem('7');
    expect(await appController.getItem('7')).toEqual(first);
    expect([cache.misses('AppService.findItem'), cache.hits('AppService.findItem')]).toEqual([1, 1]);
    cache.advance('61s'); // no sleeping
    expect(await appController.getItem('7')).toEqual({ id: '7', load: 2 });
  });

  it('keeps a session in its own cache, for its profile', async () => {
    const sessions = getCacheTesting(app, 'sessions');
    await app.get(AppController).getSession('abc');
    sessions.advance('29m');
    await app.get(AppController).getSession('abc');
    expect(app.get(AppService).sessionLoads).toBe(1);
    expect(sessions.keys()).toEqual(['sessions:session:abc']);
  });

  it('runs the plain method on an instance Nest did not create', async () => {
    const service = new AppService({} as never); // no Nest, no cache
    await service.findItem('7');
    await service.findItem('7');
    expect(service.loads).toBe(2);
  });
});
