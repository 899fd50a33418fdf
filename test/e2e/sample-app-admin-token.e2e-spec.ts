// The sample app's ADMIN_TOKEN rule, through createSampleApp (as main.ts starts the app) and through
// readSampleAppEnv (how main.ts reads the environment, before it starts anything): outside development
// the app refuses to start without a token; in development it starts with /admin open.
import type { INestApplication } from '@nestjs/common';
import { CacheService } from 'nestjs-redis-cache';
import request from 'supertest';
import { readSampleAppEnv } from '../../sample-app/config/env.js';
import { createSampleApp, type CreateSampleAppOptions } from '../../sample-app/create-sample-app.js';

// A namespace of its own, so parallel test files sharing the Redis server never see each other's keys.
const NAMESPACE = `e2e-admin-token-${process.pid}-${Date.now()}`;
const ADMIN_TOKEN = 'e2e-admin-token';
const REFUSED = /ADMIN_TOKEN is not set and NODE_ENV is "production": refusing to start/;

describe('sample app admin token (e2e)', () => {
  let redisUrl: string;
  const started: INestApplication[] = [];

  beforeAll(() => {
    const url = process.env.TEST_REDIS_URL;
    if (!url) throw new Error('TEST_REDIS_URL is not set: run through jest (its global setup starts Redis)');
    redisUrl = url;
  });

  afterAll(async () => {
    // Leave nothing behind in the Redis shared with the other test files.
    await started[0]?.get(CacheService).clear();
    for (const app of started) await app.close();
  });

  /** Creates the app on a throwaway in-memory database, closed in afterAll. */
  async function start(options: Partial<CreateSampleAppOptions>): Promise<INestApplication> {
    const app = await createSampleApp({
      redisUrl,
      dbPath: ':memory:',
      queryDelayMs: 0,
      namespace: NAMESPACE,
      logger: false,
      ...options,
    });
    started.push(app);
    return app;
  }

  /** Runs `fn` with process.env.NODE_ENV set to `value` (deleted for undefined), then restores it. */
  async function withNodeEnv<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
    const saved = process.env.NODE_ENV;
    const set = (v: string | undefined) => {
      if (v === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = v;
    };
    set(value);
    try {
      return await fn();
    } finally {
      set(saved);
    }
  }

  const invalidate = (app: INestApplication, headers: Record<string, string> = {}) =>
    request(app.getHttpServer()).post('/admin/cache/invalidate').set(headers).send({ key: 'user:1' });

  describe('outside development (NODE_ENV=production)', () => {
    it.each([undefined, ''])(
      'refuses to create the app with ADMIN_TOKEN %p, naming ADMIN_TOKEN and NODE_ENV',
      async (adminToken) => {
        await expect(start({ nodeEnv: 'production', adminToken })).rejects.toThrow(REFUSED);
        expect(started).toHaveLength(0);
      },
    );

    it('takes NODE_ENV from the environment when not given', async () => {
      await withNodeEnv('production', () => expect(start({})).rejects.toThrow(REFUSED));
    });

    it('refuses a token of only whitespace, in any environment', async () => {
      for (const nodeEnv of ['production', 'development']) {
        await expect(start({ nodeEnv, adminToken: ' \t ' })).rejects.toThrow(/ADMIN_TOKEN is only whitespace/);
      }
    });

    it('starts with a token, and /admin then requires it: 403 without or with a wrong one, 200 with it', async () => {
      const app = await start({ nodeEnv: 'production', adminToken: ADMIN_TOKEN });
      expect((await invalidate(app)).status).toBe(403);
      expect((await invalidate(app, { 'x-admin-token': 'nope' })).status).toBe(403);
      expect((await invalidate(app, { 'x-admin-token': `${ADMIN_TOKEN}x` })).status).toBe(403);
      expect((await invalidate(app, { 'x-admin-token': '' })).status).toBe(403);
      const res = await invalidate(app, { 'x-admin-token': ADMIN_TOKEN });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ deleted: expect.any(Number) });
    });
  });

  describe('in development', () => {
    it.each(['development', 'test', ''])('NODE_ENV %p: starts without a token, /admin open', async (nodeEnv) => {
      const app = await start({ nodeEnv });
      expect((await invalidate(app)).status).toBe(200);
    });

    it('NODE_ENV unset (npm start on a fresh machine): starts without a token, /admin open', async () => {
      const app = await withNodeEnv(undefined, () => start({}));
      expect((await invalidate(app)).status).toBe(200);
    });
  });

  describe('readSampleAppEnv (main.ts, before it starts Redis or listens)', () => {
    it('throws for NODE_ENV=production without ADMIN_TOKEN, or with an empty one', () => {
      expect(() => readSampleAppEnv({ NODE_ENV: 'production' })).toThrow(REFUSED);
      expect(() => readSampleAppEnv({ NODE_ENV: 'production', ADMIN_TOKEN: '' })).toThrow(REFUSED);
      expect(() => readSampleAppEnv({ NODE_ENV: 'staging' })).toThrow(/NODE_ENV is "staging"/);
    });

    it('throws for an ADMIN_TOKEN of only whitespace', () => {
      expect(() => readSampleAppEnv({ ADMIN_TOKEN: '   ' })).toThrow(/ADMIN_TOKEN is only whitespace/);
    });

    it('accepts a token in production, and no token in development', () => {
      expect(readSampleAppEnv({ NODE_ENV: 'production', ADMIN_TOKEN: 'secret' })).toMatchObject({
        adminToken: 'secret',
        nodeEnv: 'production',
      });
      for (const NODE_ENV of [undefined, '', 'development', 'test']) {
        expect(readSampleAppEnv({ NODE_ENV, ADMIN_TOKEN: '' }).adminToken).toBeUndefined();
      }
    });
  });
});
