import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Cacheable, CacheService, RedisCacheModule } from 'nestjs-redis-cache';
import { LogRecorder } from '../support/fault-helpers.js';
import { rawRedis, testRedisConnection, uniqueNamespace } from '../support/test-app.js';
import { scanEntryKeys } from '../support/redis-keys.js';

abstract class Repository {
  abstract readonly table: string;
  loads = 0;

  @Cacheable()
  async find(id: number): Promise<string> {
    this.loads++;
    return `${this.table}#${id}`;
  }
}

@Injectable()
class UsersRepository extends Repository {
  readonly table = 'users';
}

@Injectable()
class PostsRepository extends Repository {
  readonly table = 'posts';
}

class FactoryBuilt {
  loads = 0;
  @Cacheable({ key: 'factory' })
  async load(): Promise<number> {
    return ++this.loads;
  }
}

describe('decorated methods inherited by several providers', () => {
  it('key and name the entries by the concrete class, and warn about instances Nest did not build', async () => {
    const namespace = uniqueNamespace('inherit');
    @Module({
      imports: [RedisCacheModule.forRoot({ redis: testRedisConnection(), namespace })],
      providers: [UsersRepository, PostsRepository, { provide: 'FACTORY', useFactory: () => new FactoryBuilt() }],
    })
    class AppModule {}
    const logs = new LogRecorder();
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: logs });
    await app.init();
    const redis = rawRedis();
    try {
      const users = app.get(UsersRepository);
      const posts = app.get(PostsRepository);
      expect(await users.find(1)).toBe('users#1');
      expect(await posts.find(1)).toBe('posts#1');
      expect(await posts.find(1)).toBe('posts#1');
      expect(users.loads + posts.loads).toBe(2);
      expect((await scanEntryKeys(redis, `${namespace}:*`)).sort()).toEqual([
        `${namespace}:PostsRepository:find:1`,
        `${namespace}:UsersRepository:find:1`,
      ]);
      const { byName } = app.get(CacheService).stats();
      expect(byName['UsersRepository.find']).toMatchObject({ misses: 1, hits: 0 });
      expect(byName['PostsRepository.find']).toMatchObject({ misses: 1, hits: 1 });

      const factoryBuilt = app.get<FactoryBuilt>('FACTORY');
      await factoryBuilt.load();
      await factoryBuilt.load();
      expect(factoryBuilt.loads).toBe(2); // not cached: no injector, no cache...
      const warnings = logs.lines.filter((line) => line.level === 'warn' && line.message.includes('injector'));
      expect(warnings.map((line) => line.message.split(':')[0])).toEqual(['FactoryBuilt.load']); // ...and said so
    } finally {
      await app.close();
      await redis.quit();
    }
  });
});
