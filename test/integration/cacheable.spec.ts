import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheEvict, CachePut, CacheService } from 'nestjs-redis-cache';
import { createTestApp, rawRedis } from '../support/test-app.js';

@Injectable()
class UsersService {
  loads = 0;
  db = new Map<number, { id: number; name: string }>([[1, { id: 1, name: 'Ada' }]]);

  @Cacheable({ key: 'user:{0}', ttl: 60 })
  async find(id: number): Promise<{ id: number; name: string } | null> {
    this.loads++;
    return this.db.get(id) ?? null;
  }

  @CachePut({ key: 'user:{0}' })
  async rename(id: number, name: string): Promise<{ id: number; name: string }> {
    const user = { id, name };
    this.db.set(id, user);
    return user;
  }

  @CacheEvict({ key: 'user:{0}' })
  async remove(id: number): Promise<void> {
    this.db.delete(id);
  }
}

describe('@Cacheable / @CachePut / @CacheEvict on a provider', () => {
  let app: INestApplication;
  let users: UsersService;
  let cache: CacheService;
  const redis = rawRedis();

  beforeAll(async () => {
    app = await createTestApp({ providers: [UsersService] });
    users = app.get(UsersService);
    cache = app.get(CacheService);
  });
  afterAll(async () => {
    await app.close();
    await redis.quit();
  });

  it('loads once, then serves from Redis with a TTL', async () => {
    expect(await users.find(1)).toEqual({ id: 1, name: 'Ada' });
    expect(await users.find(1)).toEqual({ id: 1, name: 'Ada' });
    expect(users.loads).toBe(1);
    const namespace = (cache as unknown as { engine: { config: { namespace: string } } }).engine.config.namespace;
    const ttl = await redis.pttl(`${namespace}:user:1`);
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(66_000);
    expect(cache.stats().byName['UsersService.find']).toMatchObject({ hits: 1, misses: 1 });
  });

  it('writes through and evicts', async () => {
    await users.rename(1, 'Grace');
    expect(await users.find(1)).toEqual({ id: 1, name: 'Grace' });
    const loads = users.loads;
    await users.remove(1);
    expect(await users.find(1)).toBeNull();
    expect(users.loads).toBe(loads + 1);
  });
});
