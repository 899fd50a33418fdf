// The README's ACL rules ("Least privilege"), on their own: every path of the module runs as a user
// holding only `aclRulesFor(namespace)` with nothing refused (ACL LOG), including the one no core
// spec reaches (ZREM, pruning prefix markers past their cap), with an ioredis keyPrefix too; and the
// user is refused what is not the module's. Runs in the integration-acl project only (jest.config.mjs),
// where createTestApp connects each app as a fresh such user (test/support/acl.setup.ts).
import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Cacheable, CachePut, CacheService, RedisCacheConfigError } from 'nestjs-redis-cache';
import { MAX_PREFIX_MARKERS } from '../../lib/core/invalidation/prefix-generations.js';
import { bookkeeping, scanEntryKeys } from '../support/redis-keys.js';
import { delay } from '../support/timing.js';
import { waitFor } from '../support/load-helpers.js';
import { ACL_PASSWORD_PLACEHOLDER, aclRulesFor, aclUserOf, createAclUser, refusedTo } from '../support/acl-user.js';
import { createTestApp, rawRedis, testRedisUrl, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Articles {
  loads = 0;
  version = 1;

  @Cacheable({ key: 'article:{0}', ttl: 60, tags: (_: string, id: number) => [`article:${id}`] })
  async find(id: number): Promise<string> {
    this.loads++;
    return `article ${id} v${this.version}`;
  }

  @CachePut({ key: 'article:{0}' })
  async edit(id: number): Promise<string> {
    return `article ${id} v${++this.version}`;
  }
}

interface Instance {
  app: INestApplication;
  articles: Articles;
  cache: CacheService;
  user: string;
}

describe('the module as a Redis user holding only aclRulesFor(namespace)', () => {
  jest.setTimeout(15_000);
  const admin = rawRedis();
  const apps: INestApplication[] = [];

  beforeAll(() => {
    if (!process.env.TEST_REDIS_ACL) throw new Error('run this spec in the integration-acl jest project');
  });
  afterEach(async () => {
    // Each app's close() also fails if Redis refused its user anything (test-app.ts).
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => admin.disconnect());

  /** An app on `namespace`, logged in as a user of its own; with L1, once L1 serves. */
  async function start(namespace: string, l1 = false): Promise<Instance> {
    const app = await createTestApp({
      providers: [Articles],
      cache: { namespace, ...(l1 ? { l1: { max: 100, ttl: 60 } } : {}) },
    });
    apps.push(app);
    if (l1) await waitFor('L1 to serve', () => app.get(CacheService).status().l1 === 'serving', 5_000);
    const cache = app.get(CacheService);
    const user = (cache.client as Redis).options.username!;
    return { app, articles: app.get(Articles), cache, user };
  }

  async function expectNothingRefused(...instances: Instance[]): Promise<void> {
    for (const { cache, user } of instances) {
      expect(await refusedTo(admin, user)).toEqual([]);
      expect(cache.stats()).toMatchObject({ errors: 0, failedCalls: 0, rejectedMessages: 0 });
    }
  }

  it('logs in as that user on both of its connections: commands and subscriber', async () => {
    const a = await start(uniqueNamespace('acl'));
    expect(a.user).toMatch(/^nrc-acl-test-/);
    const clients = ((await admin.client('LIST')) as string)
      .split('\n')
      .filter((line) => line.includes(` user=${a.user} `));
    expect(clients).toHaveLength(2);
    expect(clients.filter((line) => / sub=[1-9]/.test(line))).toHaveLength(1);
  });

  it('reads, writes, evicts, invalidates tags, clears and reclaims prefixes, with L1 and leases across apps: nothing refused', async () => {
    const namespace = uniqueNamespace('acl');
    const [a, b] = [await start(namespace, true), await start(namespace, true)];

    // A load in A while B asks for the same key: B waits for A's lease to be released (pub/sub).
    let loaderRuns = 0;
    const loader = async () => {
      loaderRuns++;
      await delay(150);
      return 'report v1';
    };
    const first = a.cache.getOrSet('report', loader, { tags: ['reports'] });
    await delay(30);
    expect(await b.cache.getOrSet('report', loader, { tags: ['reports'] })).toBe('report v1');
    expect(await first).toBe('report v1');
    expect(loaderRuns).toBe(1);
    // Invalidated in A: B's L1 drops its copy once the announcement arrives.
    await a.cache.invalidateTags('reports');
    const reload = async () => 'report v2';
    await waitFor(
      'B to drop the report',
      async () => (await b.cache.getOrSet('report', reload)) === 'report v2',
      2_000,
    );

    // @Cacheable read by both, kept in B's L1; A's @CachePut reaches B's L1 (L1 channel).
    expect(await a.articles.find(1)).toBe('article 1 v1');
    const l1HitsBefore = b.cache.stats().l1Hits; // the report's, above: as many as the wait polled
    // B's first read is a Redis hit, kept; the next two are served from its L1.
    for (let i = 0; i < 3; i++) expect(await b.articles.find(1)).toBe('article 1 v1');
    expect(b.cache.stats().l1Hits).toBe(l1HitsBefore + 2);
    expect(await a.articles.edit(1)).toBe('article 1 v2');
    await waitFor('B to drop its copy', async () => (await b.articles.find(1)) === 'article 1 v2', 2_000);

    // A prefix cleared in A (prefix markers, announced), then its keys reclaimed (SCAN + UNLINK).
    await a.cache.clear('article:');
    const loads = b.articles.loads;
    await waitFor('B to load again', async () => (await b.articles.find(1)) === 'article 1 v1', 2_000);
    expect(b.articles.loads).toBe(loads + 1);
    expect(await a.cache.reclaim('article:')).toBe(1);

    await a.cache.set('plain', { n: 1 });
    expect(await b.cache.get('plain')).toEqual({ n: 1 });
    expect(await b.cache.del('plain', 'report')).toBe(2);
    expect(await a.cache.get('plain')).toBeUndefined();
    await expectNothingRefused(a, b);
  });

  it(`prunes the prefix markers past their cap of ${MAX_PREFIX_MARKERS} (ZRANGE, ZREM in the script)`, async () => {
    const namespace = uniqueNamespace('acl');
    const a = await start(namespace);
    await a.cache.clear('first:');
    // Markers of long ago (epoch 1), as many as the cap: the next clear finds the set too big.
    const markers = bookkeeping(namespace).prefixes;
    const old = Array.from({ length: MAX_PREFIX_MARKERS }, (_, i) => [0, `old-${i}:\u0000` + '1'] as const);
    await admin.zadd(markers, ...old.flat());
    await a.cache.clear('second:');
    const members = await admin.zrange(markers, '0', '-1');
    expect(members.filter((member) => member.startsWith('old-'))).toEqual([]);
    expect(members.some((member) => member.startsWith('second:\0'))).toBe(true);
    await expectNothingRefused(a);
  });

  it('with an ioredis keyPrefix: aclRulesFor(namespace, keyPrefix) covers its keys and channels', async () => {
    const namespace = uniqueNamespace('acl');
    const keyPrefix = `app-${process.pid}:`;
    const url = await createAclUser(admin, namespace, 'pfx-secret', keyPrefix);
    const { hostname, port } = new URL(testRedisUrl());
    const user = aclUserOf(url);
    const redis = { host: hostname, port: Number(port), username: user, password: 'pfx-secret', keyPrefix };
    try {
      const app = await createTestApp({ providers: [Articles], cache: { redis, namespace } });
      apps.push(app);
      const a: Instance = { app, articles: app.get(Articles), cache: app.get(CacheService), user };
      expect(await a.articles.find(1)).toBe('article 1 v1');
      expect(await a.articles.find(1)).toBe('article 1 v1');
      expect(a.articles.loads).toBe(1);
      expect(await scanEntryKeys(admin, `${keyPrefix}${namespace}:*`)).toEqual([`${keyPrefix}${namespace}:article:1`]);
      await a.cache.invalidateTags('article:1');
      await a.cache.clear('article:');
      expect(await a.cache.reclaim('article:')).toBe(1);
      await expectNothingRefused(a);
      await app.close();
    } finally {
      await admin.call('ACL', 'DELUSER', user);
    }
  });

  // ACL key patterns hold in every database: a user that may SELECT reaches its namespace's keys in all of them.
  it('in a database other than 0 it also needs +select', async () => {
    const namespace = uniqueNamespace('acl');
    const url = await createAclUser(admin, namespace, 'db-secret');
    const user = aclUserOf(url);
    await admin.call('ACL', 'SETUSER', user, '+select');
    const db1 = rawRedis(`${testRedisUrl()}/1`);
    try {
      const app = await createTestApp({ providers: [Articles], cache: { redis: `${url}/1`, namespace } });
      apps.push(app);
      const a: Instance = { app, articles: app.get(Articles), cache: app.get(CacheService), user };
      expect(await a.articles.find(1)).toBe('article 1 v1');
      expect(await a.articles.find(1)).toBe('article 1 v1');
      expect(await db1.exists(`${namespace}:article:1`)).toBe(1);
      expect(await admin.exists(`${namespace}:article:1`)).toBe(0);
      await expectNothingRefused(a);
      await app.close();
    } finally {
      db1.disconnect();
      await admin.call('ACL', 'DELUSER', user);
    }
  });

  // ioredis's SELECT refused (NOPERM) would leave the app in database 0, announcing on database 1's
  // channels: the bootstrap selects it again itself and fails on the refusal.
  it('in a database other than 0 without +select, the bootstrap fails instead of using database 0', async () => {
    const namespace = uniqueNamespace('acl');
    const url = await createAclUser(admin, namespace, 'db-secret');
    try {
      const failure = await createTestApp({ cache: { redis: `${url}/1`, namespace } }).then(
        (app) => void apps.push(app),
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(RedisCacheConfigError);
      expect((failure as Error).message).toMatch(/select/i);
    } finally {
      await admin.call('ACL', 'DELUSER', aclUserOf(url));
    }
  });

  it.each(['zrange', 'subscribe', 'evalsha'])(
    "a user without +%s (rules short of the README's) fails the bootstrap, naming the refusal",
    async (missing) => {
      const namespace = uniqueNamespace('acl');
      const name = `nrc-acl-short-${process.pid}-${missing}`;
      const rules = aclRulesFor(namespace)
        .split(' ')
        .filter((rule) => rule !== `+${missing}`)
        .map((rule) => (rule === `>${ACL_PASSWORD_PLACEHOLDER}` ? '>short-secret' : rule));
      await admin.call('ACL', 'SETUSER', name, 'reset', ...rules);
      try {
        const url = new URL(testRedisUrl());
        url.username = name;
        url.password = 'short-secret';
        const failure = await createTestApp({ cache: { redis: url.href, namespace } }).then(
          (app) => void apps.push(app),
          (error: unknown) => error,
        );
        expect(failure).toBeInstanceOf(RedisCacheConfigError);
        expect((failure as Error).message).toMatch(/(NOPERM|can't run this command).*Least privilege/);
        expect((failure as Error).message).not.toContain('short-secret');
      } finally {
        await admin.call('ACL', 'DELUSER', name);
      }
    },
  );

  it('is refused other keys and channels, and commands the module does not send', async () => {
    const namespace = uniqueNamespace('acl');
    const url = await createAclUser(admin, namespace, 'probe-secret');
    const probe = new Redis(url, { maxRetriesPerRequest: 0 });
    try {
      await probe.set(`${namespace}:mine`, '1');
      await expect(probe.get(`${namespace}-other:x`)).rejects.toThrow(/^NOPERM/);
      await expect(probe.set('other', '1')).rejects.toThrow(/^NOPERM/);
      await expect(probe.publish(`${namespace}-other:@db0:lease`, 'x')).rejects.toThrow(/^NOPERM/);
      for (const command of [
        ['FLUSHALL'],
        ['KEYS', '*'],
        ['CONFIG', 'GET', '*'],
        ['HSET', `${namespace}:h`, 'f', 'v'],
      ]) {
        await expect(probe.call(command[0]!, ...command.slice(1))).rejects.toThrow(/^NOPERM/);
      }
      expect(await refusedTo(admin, aclUserOf(url))).toEqual([
        expect.stringMatching(/^command: toplevel hset$/),
        expect.stringMatching(/^command: toplevel config\|get$/),
        expect.stringMatching(/^command: toplevel keys$/),
        expect.stringMatching(/^command: toplevel flushall$/),
        expect.stringMatching(/^channel: toplevel /),
        expect.stringMatching(/^key: toplevel other$/),
        expect.stringMatching(/^key: toplevel .*-other:x$/),
      ]);
    } finally {
      probe.disconnect();
      await admin.call('ACL', 'DELUSER', aclUserOf(url));
    }
  });
});
