// RedisCacheModule.forRoot: bootstrap validation of the options and of every decorated method,
// and the Redis connection option (URL, ioredis options, an adopted client) and who closes it.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Redis, type Cluster } from 'ioredis';
import {
  Cacheable,
  CacheEvict,
  CachePut,
  CacheService,
  RedisCacheModule,
  type RedisCacheModuleOptions,
} from 'nestjs-redis-cache';
import {
  initError,
  newTestClient,
  rawRedis,
  standaloneOnly,
  testRedisConnection,
  testRedisUrl,
  uniqueNamespace,
} from '../support/test-app.js';

@Injectable()
class ItemsService {
  calls = 0;
  @Cacheable({ key: 'item:{0}' })
  async find(id: number): Promise<{ id: number }> {
    this.calls++;
    return { id };
  }
}

async function build(
  options: RedisCacheModuleOptions,
  providers: unknown[] = [ItemsService],
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisCacheModule.forRoot(options)],
    providers: providers as never[],
  }).compile();
  return moduleRef.createNestApplication({ logger: false });
}

describe('RedisCacheModule.forRoot validation at bootstrap', () => {
  const base = () => ({ redis: testRedisConnection(), namespace: uniqueNamespace('opts') });

  it.each([0, -1, Infinity, NaN, 'abc'])('ttl %p fails app.init() naming ttl', async (ttl) => {
    expect(await initError(await build({ ...base(), ttl: ttl as never }))).toMatch(/\bttl must be a positive/);
  });

  it.each([-0.5, NaN, Infinity, 'lots'])('jitter %p fails app.init() naming jitter', async (jitter) => {
    expect(await initError(await build({ ...base(), jitter: jitter as never }))).toMatch(/jitter must be/);
  });

  it.each([0, -10, NaN, 'abc'])('commandTimeout %p fails app.init() naming commandTimeout', async (commandTimeout) => {
    expect(await initError(await build({ ...base(), commandTimeout: commandTimeout as never }))).toMatch(
      /commandTimeout must be/,
    );
  });

  it('nullTtl 0 and a bad profile value fail app.init()', async () => {
    expect(await initError(await build({ ...base(), nullTtl: 0 }))).toMatch(/nullTtl must be/);
    expect(await initError(await build({ ...base(), ttlProfiles: { hot: -1 } }))).toMatch(/ttlProfiles\.hot must be/);
  });

  it('an unknown TTL profile named by a decorator fails app.init() naming Class.method and the profile', async () => {
    @Injectable()
    class FeedService {
      @Cacheable({ ttl: 'user_feeed' })
      async feed(): Promise<string[]> {
        return [];
      }
    }
    const message = await initError(await build({ ...base(), ttlProfiles: { user_feed: 60 } }, [FeedService]));
    expect(message).toContain('FeedService.feed @Cacheable');
    expect(message).toContain("ttl 'user_feeed'");
    expect(message).toContain('known profiles: user_feed');
  });

  it('an unknown profile on @CachePut and a bad decorator ttl also fail, naming Class.method', async () => {
    @Injectable()
    class WriterService {
      @CachePut({ key: 'w:{0}', ttl: 'nope' })
      async write(id: number): Promise<number> {
        return id;
      }
    }
    @Injectable()
    class ZeroService {
      @CacheEvict({ key: 'z' })
      @Cacheable({ ttl: 0 })
      async zero(): Promise<number> {
        return 0;
      }
    }
    expect(await initError(await build(base(), [WriterService]))).toMatch(/WriterService\.write @CachePut: ttl 'nope'/);
    expect(await initError(await build(base(), [ZeroService]))).toMatch(/ZeroService\.zero @Cacheable: ttl must be/);
  });

  it('a valid configuration boots, and a known profile resolves', async () => {
    @Injectable()
    class ProfiledService {
      @Cacheable({ ttl: 'user_profile' })
      async load(): Promise<number> {
        return 1;
      }
    }
    const app = await build(
      { ...base(), ttl: '1h', jitter: 0, commandTimeout: '500ms', ttlProfiles: { user_profile: '1d' } },
      [ProfiledService],
    );
    await expect(app.init()).resolves.toBe(app);
    await app.close();
  });
});

describe('RedisCacheModule.forRoot redis option', () => {
  const redis = rawRedis();
  afterAll(() => redis.quit());

  async function roundTrip(app: INestApplication, namespace: string, db = 0): Promise<void> {
    const items = app.get(ItemsService);
    expect(await items.find(1)).toEqual({ id: 1 });
    expect(await items.find(1)).toEqual({ id: 1 });
    expect(items.calls).toBe(1);
    const inspect = db === 0 ? redis : new Redis(testRedisUrl(), { db });
    try {
      expect(await inspect.pttl(`${namespace}:item:1`)).toBeGreaterThan(0);
    } finally {
      if (inspect !== redis) await inspect.quit();
    }
  }

  // A URL and ioredis options name one server and a db; a Cluster has neither (only db 0). The cluster
  // form of the option, `{ cluster: { nodes } }`, is what every app of the cluster project is built
  // with, and cluster.spec.ts checks that app.close() closes the Cluster it opened.
  const oneServerOption = standaloneOnly('a URL or ioredis options of one server, with a db number');

  oneServerOption('a URL (with a db) opens a client that app.close() closes', async () => {
    const namespace = uniqueNamespace('url');
    const app = await build({ redis: `${testRedisUrl()}/5`, namespace });
    await app.init();
    await roundTrip(app, namespace, 5);
    const client = app.get(CacheService).client as Redis;
    expect(client.status).toBe('ready');
    await app.close();
    expect(client.status).toBe('end');
  });

  oneServerOption('ioredis options open a client (user options such as db win) that app.close() closes', async () => {
    const { hostname, port } = new URL(testRedisUrl());
    const namespace = uniqueNamespace('opts-obj');
    const app = await build({ redis: { host: hostname, port: Number(port), db: 6 }, namespace });
    await app.init();
    await roundTrip(app, namespace, 6);
    const client = app.get(CacheService).client as Redis;
    await app.close();
    expect(client.status).toBe('end');
  });

  /** Runs `body` with a client the test owns (a Redis, or a Cluster in the cluster project), quitting it however the test ends. */
  async function withClient(client: Redis | Cluster, body: (client: Redis | Cluster) => Promise<void>): Promise<void> {
    try {
      await body(client);
    } finally {
      client.disconnect();
    }
  }

  it('an existing client is used and never closed by the module', () =>
    withClient(newTestClient(), async (client) => {
      await new Promise((resolve) => client.once('ready', resolve));
      const listeners = client.listenerCount('error');
      const namespace = uniqueNamespace('adopted');
      const app = await build({ redis: client, namespace });
      await app.init();
      expect(app.get(CacheService).client).toBe(client);
      await roundTrip(app, namespace);
      await app.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
      // ...and the module takes back the 'error' listener it added to the user's client.
      expect(client.listenerCount('error')).toBe(listeners);
    }));

  it('an existing client that is still connecting at app.init() serves the first call', () =>
    withClient(newTestClient(), async (client) => {
      const namespace = uniqueNamespace('adopted-early');
      const app = await build({ redis: client, namespace });
      await app.init();
      try {
        await roundTrip(app, namespace);
        expect(app.get(CacheService).stats().errors).toBe(0);
      } finally {
        await app.close();
      }
      expect(await client.ping()).toBe('PONG');
    }));

  it('an existing lazyConnect client is connected and used (and still not closed)', () =>
    withClient(newTestClient({ lazyConnect: true }), async (client) => {
      const namespace = uniqueNamespace('adopted-lazy');
      const app = await build({ redis: client, namespace });
      await app.init();
      try {
        await roundTrip(app, namespace);
      } finally {
        await app.close();
      }
      expect(await client.ping()).toBe('PONG');
    }));
});
