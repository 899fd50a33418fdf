// The pipeline's events on node:diagnostics_channel (CACHE_CHANNELS): what each call, load, lease wait,
// invalidation, L1 drop, failure and outage publishes, with exact payloads.
import 'reflect-metadata';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Controller, Get, Injectable, Param, UseInterceptors, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import {
  CACHE_CHANNELS,
  Cacheable,
  CacheService,
  HttpCacheInterceptor,
  type CacheCallEvent,
  type CacheChannel,
  type CacheConnectionEvent,
  type CacheErrorEvent,
  type CacheInvalidationEvent,
  type CacheL1DropEvent,
  type CacheLoadEndEvent,
  type CacheLoadStartEvent,
} from 'nestjs-redis-cache';
import { waitFor } from '../support/load-helpers.js';
import { createTestApp, uniqueNamespace } from '../support/test-app.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis, type OwnRedis } from '../support/own-redis.js';

@Injectable()
class CatalogService {
  runs = 0;

  @Cacheable({ key: 'product:{0}' })
  async product(id: number): Promise<{ id: number }> {
    this.runs++;
    return { id };
  }

  @Cacheable({ key: 'kept:{0}', l1: true })
  async kept(id: number): Promise<{ id: number }> {
    this.runs++;
    return { id };
  }
}

/** Every message published on `channels` while the test runs, in order, with its channel. */
function record(channels: readonly CacheChannel[]): {
  seen: { channel: string; message: unknown }[];
  stop: () => void;
} {
  const seen: { channel: string; message: unknown }[] = [];
  const listeners = channels.map((channel) => {
    const listener = (message: unknown) => seen.push({ channel, message });
    subscribe(channel, listener);
    return { channel, listener };
  });
  return { seen, stop: () => listeners.forEach(({ channel, listener }) => unsubscribe(channel, listener)) };
}

const ALL = Object.values(CACHE_CHANNELS);

describe('events on diagnostics_channel', () => {
  let app: INestApplication;
  let catalog: CatalogService;
  let namespace: string;

  beforeEach(async () => {
    namespace = uniqueNamespace('events');
    app = await createTestApp({ providers: [CatalogService], cache: { namespace, l1: { max: 100, ttl: 60 } } });
    catalog = app.get(CatalogService);
  });

  afterEach(() => app.close());

  it('a miss publishes the load and the call; a hit publishes only the call', async () => {
    const { seen, stop } = record(ALL);
    try {
      await catalog.product(1);
      await catalog.product(1);
    } finally {
      stop();
    }
    const key = `${namespace}:product:1`;
    const source = { cache: 'default', namespace };
    expect(seen.map(({ channel }) => channel)).toEqual([
      CACHE_CHANNELS.loadStart,
      CACHE_CHANNELS.loadEnd,
      CACHE_CHANNELS.call,
      CACHE_CHANNELS.call,
    ]);
    const name = 'CatalogService.product';
    expect(seen[0].message).toEqual({ ...source, name, key, background: false } satisfies CacheLoadStartEvent);
    expect(seen[1].message).toEqual({
      ...source,
      name,
      key,
      background: false,
      failed: false,
      durationMs: expect.any(Number),
    } satisfies Record<keyof CacheLoadEndEvent, unknown>);
    const [miss, hit] = [seen[2].message as CacheCallEvent, seen[3].message as CacheCallEvent];
    expect(miss).toMatchObject({
      ...source,
      name,
      key,
      operation: 'read',
      outcome: 'miss',
      tier: 'redis',
      fallback: false,
    });
    expect(hit).toMatchObject({
      ...source,
      name,
      key,
      operation: 'read',
      outcome: 'hit',
      tier: 'redis',
      fallback: false,
    });
    // Back-dated spans need both: when the call began (epoch ms) and how long it took.
    expect(Math.abs(hit.startTime - Date.now())).toBeLessThan(5_000);
    expect(hit.durationMs).toBeGreaterThanOrEqual(0);
    expect(catalog.runs).toBe(1);
  });

  it('an L1 hit is a call of tier l1; a delete publishes the invalidation and the L1 drop', async () => {
    const cache = app.get(CacheService);
    // L1 serves once this instance has subscribed and heard the presence marker settle.
    await waitFor(
      'L1 to serve',
      async () => (await catalog.kept(7)) && (cache.stats().byName['CatalogService.kept']?.l1Hits ?? 0) > 0,
      5_000,
    );
    const { seen, stop } = record(ALL);
    try {
      await catalog.kept(7);
      expect(await cache.del('kept:7')).toBe(1);
    } finally {
      stop();
    }
    const source = { cache: 'default', namespace };
    const calls = seen.filter(({ channel }) => channel === CACHE_CHANNELS.call).map(({ message }) => message);
    expect(calls).toEqual([
      expect.objectContaining({ outcome: 'hit', tier: 'l1', durationMs: 0, key: `${namespace}:kept:7` }),
    ]);
    const drops = seen.filter(({ channel }) => channel === CACHE_CHANNELS.l1Drop).map(({ message }) => message);
    expect(drops).toEqual([{ ...source, reason: 'local', count: 1 } satisfies CacheL1DropEvent]);
    const invalidations = seen.filter(({ channel }) => channel === CACHE_CHANNELS.invalidation);
    expect(invalidations.map(({ message }) => message)).toEqual([
      { ...source, name: 'CacheService', kind: 'keys', count: 1, failed: false } satisfies CacheInvalidationEvent,
    ]);
  });

  it('tags and prefixes publish their invalidations', async () => {
    const cache = app.get(CacheService);
    const { seen, stop } = record([CACHE_CHANNELS.invalidation]);
    try {
      await cache.invalidateTags(['a', 'b']);
      await cache.clear('product:');
    } finally {
      stop();
    }
    const source = { cache: 'default', namespace, name: 'CacheService', failed: false };
    expect(seen.map(({ message }) => message)).toEqual([
      { ...source, kind: 'tags', count: 2 },
      { ...source, kind: 'prefix', count: 1 },
    ]);
  });

  it('nothing is published on a channel nobody listens to', async () => {
    const { seen, stop } = record([CACHE_CHANNELS.connection]);
    try {
      await catalog.product(2);
      await catalog.product(2);
    } finally {
      stop();
    }
    expect(seen).toEqual([]);
  });
});

@UseInterceptors(HttpCacheInterceptor)
@Controller('pages')
class PagesController {
  @Get(':id')
  page(@Param('id') id: string): { id: string } {
    return { id };
  }
}

describe('cached HTTP responses', () => {
  it('publish their calls like decorated methods: a miss, then a hit', async () => {
    const namespace = uniqueNamespace('events-http');
    const app = await createTestApp({ controllers: [PagesController], cache: { namespace } });
    const { seen, stop } = record([CACHE_CHANNELS.call]);
    try {
      await request(app.getHttpServer()).get('/pages/7').expect(200);
      await waitFor('the response to be stored', async () => {
        const response = await request(app.getHttpServer()).get('/pages/7');
        return response.headers['x-cache'] === 'HIT';
      });
    } finally {
      stop();
      await app.close();
    }
    const calls = seen.map(({ message }) => message as CacheCallEvent);
    const name = 'HTTP PagesController.page';
    expect(calls[0]).toMatchObject({ cache: 'default', namespace, name, operation: 'read', outcome: 'miss' });
    expect(calls.at(-1)).toMatchObject({ cache: 'default', namespace, name, operation: 'read', outcome: 'hit' });
  });
});

describe('the connection at bootstrap', () => {
  it('an app that connected says so once every module has initialised', async () => {
    const namespace = uniqueNamespace('events-up');
    const { seen, stop } = record([CACHE_CHANNELS.connection]);
    let app: INestApplication | undefined;
    try {
      app = await createTestApp({ providers: [CatalogService], cache: { namespace, l1: { max: 10, ttl: 60 } } });
    } finally {
      stop();
      await app?.close();
    }
    expect(seen.map(({ message }) => message)).toEqual([
      { cache: 'default', namespace, state: 'up', reason: undefined } satisfies CacheConnectionEvent,
    ]);
  });
});

describe('events when Redis fails', () => {
  let own: OwnRedis | undefined;
  let app: INestApplication | undefined;

  afterEach(async () => {
    await app?.close();
    await own?.stop();
    app = own = undefined;
  });

  it(
    'an outage publishes connection down, each failed read as an error, and calls of outcome error',
    async () => {
      own = await startOwnRedis();
      const namespace = uniqueNamespace('events-down');
      app = await createTestApp({
        providers: [CatalogService],
        cache: { redis: own.connection, namespace, commandTimeout: 200, l1: { max: 10, ttl: 60 } },
      });
      const catalog = app.get(CatalogService);
      const { seen, stop } = record([CACHE_CHANNELS.connection, CACHE_CHANNELS.error, CACHE_CHANNELS.call]);
      try {
        await own.kill();
        await catalog.product(3);
        await catalog.product(3);
      } finally {
        stop();
      }
      const source = { cache: 'default', namespace };
      const downs = seen.filter(({ channel }) => channel === CACHE_CHANNELS.connection).map(({ message }) => message);
      expect(downs).toEqual([{ ...source, state: 'down', reason: expect.any(String) } satisfies CacheConnectionEvent]);
      const errors = seen.filter(({ channel }) => channel === CACHE_CHANNELS.error).map(({ message }) => message);
      expect(errors).toHaveLength(2);
      for (const error of errors as CacheErrorEvent[]) {
        expect(error).toMatchObject({
          ...source,
          name: 'CatalogService.product',
          operation: 'read',
          key: `${namespace}:product:3`,
        });
        expect(error.error).toBeInstanceOf(Error);
      }
      const calls = seen.filter(({ channel }) => channel === CACHE_CHANNELS.call).map(({ message }) => message);
      expect(calls).toEqual([
        expect.objectContaining({ outcome: 'error', tier: 'redis' }),
        expect.objectContaining({ outcome: 'error', tier: 'redis' }),
      ]);
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );
});
