// End-to-end tests of the sample app: the app main.ts runs (built by the same createSampleApp),
// over real HTTP, against the real Redis the jest global setup started and a temporary SQLite file.
import type { INestApplication } from '@nestjs/common';
import { CacheService, type CacheStats } from 'nestjs-redis-cache';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import request from 'supertest';
import { createSampleApp } from '../../sample-app/create-sample-app.js';
import { SqliteDatabase } from '../../sample-app/database/sqlite-database.js';
import { DEFAULT_FEED_LIMIT } from '../../sample-app/posts/posts.service.js';

const QUERY_DELAY_MS = 30;
// A namespace of its own, so parallel test files sharing the Redis server never see each other's keys.
const NAMESPACE = `e2e-sample-app-${process.pid}-${Date.now()}`;
const ADMIN_TOKEN = 'e2e-admin-token';

/**
 * The ids of the user's first feed page as the seed has it (sample-app/database/seed.ts: the same
 * data on every machine), newest first, read from a freshly opened and seeded in-memory database.
 */
async function seededFeedIds(userId: number): Promise<number[]> {
  const seeded = SqliteDatabase.open(':memory:', { queryDelayMs: 0 });
  try {
    const rows = await seeded.query<{ id: number }>(
      'SELECT id FROM posts WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?',
      userId,
      DEFAULT_FEED_LIMIT,
    );
    return rows.map(({ id }) => id);
  } finally {
    seeded.onApplicationShutdown();
  }
}

describe('sample app (e2e)', () => {
  let app: INestApplication;
  let db: SqliteDatabase;
  let dbDir: string;

  beforeAll(async () => {
    const redisUrl = process.env.TEST_REDIS_URL;
    if (!redisUrl) throw new Error('TEST_REDIS_URL is not set: run through jest (its global setup starts Redis)');
    dbDir = mkdtempSync(join(tmpdir(), 'sample-app-e2e-'));
    app = await createSampleApp({
      redisUrl,
      dbPath: join(dbDir, 'sample-app.db'),
      queryDelayMs: QUERY_DELAY_MS,
      namespace: NAMESPACE,
      adminToken: ADMIN_TOKEN,
      logger: false,
    });
    await app.listen(0);
    db = app.get(SqliteDatabase);
  });

  afterAll(async () => {
    // Leave nothing behind in the Redis shared with the other test files.
    await app?.get(CacheService).clear();
    await app?.close();
    if (dbDir) rmSync(dbDir, { recursive: true, force: true });
  });

  /** Sends a request and reports how long it took and how many database reads it caused. */
  async function call(
    method: 'get' | 'put' | 'post' | 'delete',
    path: string,
    body?: object,
    headers: Record<string, string> = {},
  ) {
    const readsBefore = db.readCount;
    const started = performance.now();
    let pending = request(app.getHttpServer())[method](path).set(headers);
    if (body) pending = pending.send(body);
    const res = await pending;
    return { res, ms: performance.now() - started, reads: db.readCount - readsBefore };
  }

  const get = (path: string) => call('get', path);
  const admin = { 'x-admin-token': ADMIN_TOKEN };

  describe('cache-aside reads', () => {
    it('serves the first GET from the database (MISS) and the second from Redis (HIT), faster than one query', async () => {
      const first = await get('/users/1');
      expect(first.res.status).toBe(200);
      expect(first.res.headers['x-cache']).toBe('MISS');
      expect(first.reads).toBe(1);
      expect(first.ms).toBeGreaterThanOrEqual(QUERY_DELAY_MS);

      // Several hits, judged by the fastest: one busy moment on a loaded CI machine must not fail
      // the test, while a "hit" that queried the database could never beat the delay.
      const hits = [await get('/users/1'), await get('/users/1'), await get('/users/1')];
      for (const hit of hits) {
        expect(hit.res.status).toBe(200);
        expect(hit.res.headers['x-cache']).toBe('HIT');
        expect(hit.reads).toBe(0);
        // The cached copy round-trips exactly, Date included.
        expect(hit.res.body).toEqual(first.res.body);
      }
      expect(Math.min(...hits.map((hit) => hit.ms))).toBeLessThan(QUERY_DELAY_MS);
      expect(first.res.body).toMatchObject({ id: 1, name: expect.any(String), createdAt: '2024-01-01T01:00:00.000Z' });
    });

    it('caches a handler that returns an Observable (a post’s comment thread)', async () => {
      const first = await get('/posts/7/comments');
      expect(first.res.status).toBe(200);
      expect(first.res.headers['x-cache']).toBe('MISS');
      expect(Array.isArray(first.res.body)).toBe(true);

      const second = await get('/posts/7/comments');
      expect(second.res.headers['x-cache']).toBe('HIT');
      expect(second.reads).toBe(0);
      expect(second.res.body).toEqual(first.res.body);
    });

    it('caches a decorated controller handler (GET /posts/:id), pipes still applied', async () => {
      const first = await get('/posts/11');
      expect(first.res.status).toBe(200);
      expect(first.res.headers['x-cache']).toBe('MISS');
      expect(first.res.body).toMatchObject({ id: 11 });

      const second = await get('/posts/11');
      expect(second.res.headers['x-cache']).toBe('HIT');
      expect(second.reads).toBe(0);
      expect(second.res.body).toEqual(first.res.body);
    });

    it('bypasses the cache when the condition is false (a non-default feed page size)', async () => {
      for (let i = 0; i < 2; i++) {
        const page = await get('/users/12/posts?limit=3');
        expect(page.res.status).toBe(200);
        expect(page.res.headers['x-cache']).toBe('BYPASS');
        expect(page.reads).toBe(1);
      }
    });
  });

  describe('negative caching', () => {
    it('answers 404 for a missing user and caches the lookup: the second 404 is a HIT', async () => {
      const first = await get('/users/9999');
      expect(first.res.status).toBe(404);
      expect(first.res.headers['x-cache']).toBe('MISS');
      expect(first.reads).toBe(1);

      const second = await get('/users/9999');
      expect(second.res.status).toBe(404);
      expect(second.res.headers['x-cache']).toBe('HIT');
      expect(second.reads).toBe(0);
    });
  });

  describe('validation on cached handlers', () => {
    it.each(['/users/abc', '/users/1.5', '/posts/abc', '/posts/abc/comments', '/users/abc/posts'])(
      'GET %s is a 400 from ParseIntPipe and never reaches the cache or the database',
      async (path) => {
        const { res, reads } = await get(path);
        expect(res.status).toBe(400);
        expect(res.headers['x-cache']).toBeUndefined();
        expect(reads).toBe(0);
      },
    );

    it('rejects an invalid update body with 400 and leaves the cached user untouched', async () => {
      await get('/users/13');
      const { res } = await call('put', '/users/13', { name: '' });
      expect(res.status).toBe(400);
      const after = await get('/users/13');
      expect(after.res.headers['x-cache']).toBe('HIT');
      expect(after.res.body.name).not.toBe('');
    });
  });

  describe('write-through and eviction', () => {
    it('PUT stores the updated user, so the next GET is a HIT with the new value', async () => {
      const before = await get('/users/2');
      expect(before.res.headers['x-cache']).toBe('MISS');

      const put = await call('put', '/users/2', { name: 'Renamed Person', bio: 'Updated by the e2e test.' });
      expect(put.res.status).toBe(200);
      expect(put.res.body).toMatchObject({ id: 2, name: 'Renamed Person', bio: 'Updated by the e2e test.' });

      const after = await get('/users/2');
      expect(after.res.status).toBe(200);
      expect(after.res.headers['x-cache']).toBe('HIT');
      expect(after.reads).toBe(0);
      expect(after.res.body).toEqual(put.res.body);
      expect(after.res.body.email).toBe(before.res.body.email);
    });

    it('a failed PUT (unknown user) stores nothing: the negative entry stays', async () => {
      await get('/users/9998');
      const put = await call('put', '/users/9998', { name: 'Nobody' });
      expect(put.res.status).toBe(404);
      const after = await get('/users/9998');
      expect(after.res.status).toBe(404);
      expect(after.res.headers['x-cache']).toBe('HIT');
    });

    it('DELETE evicts the user, their feed and their cached posts: the next GETs are 404', async () => {
      const feed = await get('/users/3/posts');
      expect(feed.res.status).toBe(200);
      const postIds: number[] = feed.res.body.map((post: { id: number }) => post.id);
      // No test before this one adds or removes user 3's posts: the feed is the seed's (5 posts).
      expect(postIds).toEqual(await seededFeedIds(3));
      expect((await get(`/posts/${postIds[0]}`)).res.status).toBe(200);
      expect((await get('/users/3')).res.status).toBe(200);
      expect((await get('/users/3')).res.headers['x-cache']).toBe('HIT');

      const del = await call('delete', '/users/3');
      expect(del.res.status).toBe(204);

      const user = await get('/users/3');
      expect(user.res.status).toBe(404);
      expect(user.res.headers['x-cache']).toBe('MISS');
      expect((await get('/users/3/posts')).res.status).toBe(404);
      expect((await get(`/posts/${postIds[0]}`)).res.status).toBe(404);
      expect((await call('delete', '/users/3')).res.status).toBe(404);
    });

    it('creating a comment evicts the thread: the next GET is a MISS that includes it', async () => {
      await get('/posts/5/comments');
      const cached = await get('/posts/5/comments');
      expect(cached.res.headers['x-cache']).toBe('HIT');

      const created = await call('post', '/posts/5/comments', { userId: 1, body: 'A fresh comment from the e2e test' });
      expect(created.res.status).toBe(201);
      expect(created.res.body).toMatchObject({ postId: 5, userId: 1, body: 'A fresh comment from the e2e test' });

      const after = await get('/posts/5/comments');
      expect(after.res.headers['x-cache']).toBe('MISS');
      expect(after.res.body).toHaveLength(cached.res.body.length + 1);
      expect(after.res.body.at(-1)).toEqual(created.res.body);
      expect((await get('/posts/5/comments')).res.headers['x-cache']).toBe('HIT');
    });

    it('a comment on a missing post is a 404 and on behalf of a missing user a 400', async () => {
      expect((await call('post', '/posts/9999/comments', { userId: 1, body: 'x' })).res.status).toBe(404);
      expect((await call('post', '/posts/5/comments', { userId: 9999, body: 'x' })).res.status).toBe(400);
      expect((await call('post', '/posts/5/comments', { body: 'x' })).res.status).toBe(400);
    });

    it('creating a post caches it by its new id, and evicts the author’s feed and the trending lists', async () => {
      await get('/users/14/posts');
      expect((await get('/users/14/posts')).res.headers['x-cache']).toBe('HIT');
      await get('/posts/trending?limit=50');
      const trending = await get('/posts/trending?limit=50');
      expect(trending.reads).toBe(0);

      const created = await call('post', '/posts', { userId: 14, title: 'Caching in practice', body: 'Hello.' });
      expect(created.res.status).toBe(201);
      const post = created.res.body as { id: number; userId: number; likes: number };
      expect(post).toMatchObject({ userId: 14, title: 'Caching in practice', likes: 0 });

      const byId = await get(`/posts/${post.id}`);
      expect(byId.res.headers['x-cache']).toBe('HIT');
      expect(byId.reads).toBe(0);
      expect(byId.res.body).toEqual(created.res.body);

      const feed = await get('/users/14/posts');
      expect(feed.res.headers['x-cache']).toBe('MISS');
      expect(feed.res.body[0]).toEqual(created.res.body);

      // The trending window is the 50 newest posts, so the new post is in the recomputed list.
      const trendingAfter = await get('/posts/trending?limit=50');
      expect(trendingAfter.reads).toBe(1);
      expect(trendingAfter.res.body.map((p: { id: number }) => p.id)).toContain(post.id);
    });

    it('a post by a missing user is a 400 and evicts nothing', async () => {
      await get('/posts/trending');
      const created = await call('post', '/posts', { userId: 9999, title: 't', body: 'b' });
      expect(created.res.status).toBe(400);
      expect((await get('/posts/trending')).reads).toBe(0);
    });
  });

  describe('manual invalidation (POST /admin/cache/invalidate)', () => {
    it('requires the admin token', async () => {
      const { res } = await call('post', '/admin/cache/invalidate', { key: 'user:4' });
      expect(res.status).toBe(403);
      const wrong = await call('post', '/admin/cache/invalidate', { key: 'user:4' }, { 'x-admin-token': 'nope' });
      expect(wrong.res.status).toBe(403);
    });

    it('deletes one key: the next GET is a MISS', async () => {
      await get('/users/4');
      expect((await get('/users/4')).res.headers['x-cache']).toBe('HIT');

      const { res } = await call('post', '/admin/cache/invalidate', { key: 'user:4' }, admin);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ deleted: 1 });

      expect((await get('/users/4')).res.headers['x-cache']).toBe('MISS');
      expect((await get('/users/4')).res.headers['x-cache']).toBe('HIT');
    });

    it('clears everything under a prefix, and nothing else', async () => {
      for (const path of ['/users/20', '/users/21', '/posts/20']) await get(path);

      const { res } = await call('post', '/admin/cache/invalidate', { prefix: 'user:2' }, admin);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ cleared: 'user:2' });

      expect((await get('/users/20')).res.headers['x-cache']).toBe('MISS');
      expect((await get('/users/21')).res.headers['x-cache']).toBe('MISS');
      expect((await get('/posts/20')).res.headers['x-cache']).toBe('HIT');
    });

    it('rejects a body that names no or several targets', async () => {
      for (const body of [{}, { key: 'user:1', prefix: 'user:' }, { all: false }, { key: '' }, { keys: [] }]) {
        expect((await call('post', '/admin/cache/invalidate', body, admin)).res.status).toBe(400);
      }
    });
  });

  describe('GET /cache/stats', () => {
    it('counts hits and misses overall, per cached method and per route, with the hit rate', async () => {
      const before = (await get('/cache/stats')).res.body as CacheStats;

      await get('/users/30'); // miss
      await get('/users/30'); // hit
      await get('/users/30'); // hit

      const stats = await get('/cache/stats');
      expect(stats.res.status).toBe(200);
      expect(stats.res.headers['x-cache']).toBeUndefined();
      const after = stats.res.body as CacheStats;

      expect(after.hits - before.hits).toBe(2);
      expect(after.misses - before.misses).toBe(1);
      expect(after.errors).toBe(0);
      // The library reports the rate rounded to 4 decimals.
      expect(after.hitRate).toBeCloseTo((after.hits + after.stale) / (after.hits + after.stale + after.misses), 3);

      const method = after.byName['UsersService.findById'];
      const methodBefore = before.byName['UsersService.findById'];
      expect(method).toMatchObject({
        hits: (methodBefore?.hits ?? 0) + 2,
        misses: (methodBefore?.misses ?? 0) + 1,
      });

      const route = after.byRoute['GET /users/:id'];
      const routeBefore = before.byRoute['GET /users/:id'];
      expect(route).toMatchObject({
        hits: (routeBefore?.hits ?? 0) + 2,
        misses: (routeBefore?.misses ?? 0) + 1,
      });
    });
  });
});
