// Two Nest applications in one process, each on its own Redis (A on the test Redis, a Cluster in
// the cluster project; B on a redis-server of this file), with the same decorated service class and
// the same namespace: no shared state, in Redis or in memory.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Cacheable, CacheEvict, CacheService } from 'nestjs-redis-cache';
import { startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';
import { createTestApp, rawRedis, testRedisConnection, uniqueNamespace } from '../support/test-app.js';
import { holdsValue } from '../support/redis-keys.js';

@Injectable()
class GreetingService {
  static created = 0;
  readonly instance = ++GreetingService.created;
  runs = 0;

  @Cacheable({ key: 'greeting:{0}' })
  async greet(name: string): Promise<string> {
    this.runs++;
    return `hello ${name} from instance ${this.instance}`;
  }

  @CacheEvict({ key: 'greeting:{0}' })
  async forget(_name: string): Promise<void> {}
}

describe('two applications, two Redis servers, one process', () => {
  let second: LocalRedisServer;
  let appA: INestApplication;
  let appB: INestApplication;
  let redisA: Redis;
  let redisB: Redis;
  const namespace = uniqueNamespace('two');

  beforeAll(async () => {
    second = await startLocalRedis();
    appA = await createTestApp({ providers: [GreetingService], cache: { redis: testRedisConnection(), namespace } });
    appB = await createTestApp({ providers: [GreetingService], cache: { redis: second.url, namespace } });
    redisA = rawRedis();
    redisB = new Redis(second.url);
  });
  afterAll(async () => {
    await appA?.close();
    await appB?.close();
    redisA?.disconnect();
    redisB?.disconnect();
    await second?.stop();
  });

  it("each app writes to its own Redis and does not see the other one's values", async () => {
    const a = appA.get(GreetingService);
    const b = appB.get(GreetingService);
    expect(a).not.toBe(b);

    expect(await a.greet('ada')).toBe(`hello ada from instance ${a.instance}`);
    expect(await redisA.exists(`${namespace}:greeting:ada`)).toBe(1);
    expect(await redisB.exists(`${namespace}:greeting:ada`)).toBe(0);

    expect(await b.greet('ada')).toBe(`hello ada from instance ${b.instance}`);
    expect(b.runs).toBe(1);
    expect(await a.greet('ada')).toBe(`hello ada from instance ${a.instance}`);
    expect(await b.greet('ada')).toBe(`hello ada from instance ${b.instance}`);
    expect([a.runs, b.runs]).toEqual([1, 1]);

    await appA.get(CacheService).set('only-a', 1);
    expect(await appB.get(CacheService).get('only-a')).toBeUndefined();
  });

  it("an eviction in one app leaves the other app's entry alone", async () => {
    const a = appA.get(GreetingService);
    const b = appB.get(GreetingService);
    await a.greet('bob');
    await b.greet('bob');
    await a.forget('bob');
    expect(await holdsValue(redisA, `${namespace}:greeting:bob`)).toBe(false);
    expect(await redisB.exists(`${namespace}:greeting:bob`)).toBe(1);
    expect(await appB.get(CacheService).reclaim()).toBe(2);
    expect(await redisA.exists(`${namespace}:greeting:ada`)).toBe(1);
  });

  it('stats are separate', async () => {
    const statsA = appA.get(CacheService).stats().byName['GreetingService.greet'];
    const statsB = appB.get(CacheService).stats().byName['GreetingService.greet'];
    // A: ada miss, ada hit, bob miss. B: ada miss, ada hit, bob miss.
    expect(statsA).toMatchObject({ hits: 1, misses: 2 });
    expect(statsB).toMatchObject({ hits: 1, misses: 2 });
    await appA.get(GreetingService).greet('ada');
    expect(appA.get(CacheService).stats().byName['GreetingService.greet'].hits).toBe(2);
    expect(appB.get(CacheService).stats().byName['GreetingService.greet'].hits).toBe(1);
  });

  it('closing one app leaves the other working', async () => {
    const extra = await createTestApp({ providers: [GreetingService], cache: { redis: second.url, namespace } });
    await extra.close();
    const b = appB.get(GreetingService);
    await b.greet('carol');
    await b.greet('carol');
    expect(b.runs).toBe(3);
  });
});
