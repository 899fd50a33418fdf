// Every lease goes back, and waiters read what landed. Two apps on one Redis and namespace stand for
// two processes: a holder whose lease a write revoked wakes the waiters to read that write (not to
// run the method); a holder whose completion Redis refused gives its lease back once Redis answers;
// an `unless` that throws (the caller still gets its value) gives it back at once; a lease taken while the app closes goes straight
// back; a caller that saw an older version is told to read the newer one rather than wait for its
// refresh.
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import type { Redis } from 'ioredis';
import { BookkeepingKeys } from '../../lib/core/bookkeeping-keys.js';
import { FRESH_UNTIL_OFFSET, LOAD_MS_OFFSET, newLeaseToken } from '../../lib/core/cache-entry.js';
import { CARRIED_VALUE_MAX_BYTES } from '../../lib/store/entry-scripts.js';
import { watchCommands } from '../support/monitor.js';
import { engineOf } from '../support/engine-of.js';
import { notAsAclUser } from '../support/acl-user.js';
import { timed, waitFor } from '../support/load-helpers.js';
import { createTestApp, rawRedis, standaloneOnly, uniqueNamespace } from '../support/test-app.js';
import { delay } from '../support/timing.js';

@Injectable()
class ArticleService {
  label = '?';
  /** Appended to every article: a long one makes an entry too large to ride along with its release. */
  padding = '';
  runs = 0;
  delayMs = 300;
  /** Runs inside the method, after its delay: lets a test act while the lease is held. */
  beforeReturn: (() => Promise<void>) | undefined;

  @Cacheable({ key: 'article:{0}', ttl: 60 })
  async article(id: number): Promise<string> {
    this.runs++;
    await delay(this.delayMs);
    await this.beforeReturn?.();
    return `article ${id} from ${this.label}${this.padding}`;
  }

  @Cacheable({ key: 'list:{0}', ttl: 60, unless: (list: { items: string[] } | null) => list!.items.length === 0 })
  async list(id: number): Promise<{ items: string[] } | null> {
    this.runs++;
    return id === 0 ? null : { items: [`item ${id}`] };
  }
}

describe('leases go back, and waiters read what landed', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let ns: string;
  const key = (logical: string) => `${ns}:${logical}`;

  async function start(label: string, cache: RedisCacheModuleOptions = {}) {
    const app = await createTestApp({ providers: [ArticleService], cache: { namespace: ns, jitter: 0, ...cache } });
    apps.push(app);
    const articles = app.get(ArticleService);
    articles.label = label;
    return { app, articles, cache: app.get(CacheService), engine: engineOf(app) };
  }

  beforeEach(() => {
    ns = uniqueNamespace('release');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it("a write that revokes the holder's lease wakes the waiters to read it, not to run the method", async () => {
    const holder = await start('H');
    const waiter = await start('W');
    const loading = holder.articles.article(1);
    await waitFor('the holder to take the lease', () => holder.articles.runs === 1);
    const waiting = waiter.articles.article(1);
    await delay(50);
    // A write of the key in the holder's process while its load runs: the load's value may be older.
    await holder.cache.set('article:1', 'article 1 as written');
    expect(await loading).toBe('article 1 from H'); // the holder's caller gets its own load
    expect(await waiting).toBe('article 1 as written'); // the waiter read the write
    expect(waiter.articles.runs).toBe(0);
    expect(await holder.cache.get('article:1')).toBe('article 1 as written'); // the load did not overwrite it
  });

  // CLIENT KILL of the holder's one connection makes its completion fail. A Cluster client reconnects
  // a killed node connection by itself and the completion goes through, so the refusal cannot be
  // staged that way there; completions lost to a dead primary are cluster-failover.spec.ts's subject.
  const onOneServer = notAsAclUser(
    "CLIENT ID through the holder's client",
    standaloneOnly("CLIENT KILL of the holder's single connection"),
  );

  onOneServer(
    'a holder whose completion Redis refused gives the lease back once Redis answers: waiters do not sit out lockWait',
    async () => {
      const holder = await start('H');
      const waiter = await start('W', { lockWait: 6_000 });
      const client = holder.cache.client as Redis;
      const id = await client.client('ID');
      // The holder's connection drops just before its method returns: the completion is refused.
      holder.articles.beforeReturn = async () => {
        holder.articles.beforeReturn = undefined;
        await redis.client('KILL', 'ID', String(id));
        await waitFor('the holder to notice', () => client.status !== 'ready', 2_000, 2);
      };
      const loading = holder.articles.article(2);
      await waitFor('the holder to take the lease', () => holder.articles.runs === 1);
      const waiting = timed(() => waiter.articles.article(2));
      expect(await loading).toBe('article 2 from H');
      const { value, ms } = await waiting;
      // Given back about a second later (the retry of held-back invalidations), not after lockWait (6 s).
      expect(ms).toBeLessThan(3_500);
      expect(value).toBe('article 2 from W'); // an empty release: the waiter ran the method itself
      expect(holder.cache.stats().errors).toBe(1);
      expect(await redis.exists(key('article:2'))).toBe(0); // nothing stored, no lease left
    },
    15_000,
  );

  describe('a release that carries the value', () => {
    /** The GETs of `redisKey` sent while `work` runs (not those of scripts). */
    async function readsOf(redisKey: string, work: () => Promise<void>): Promise<number> {
      const watch = await watchCommands(redis);
      try {
        await work();
      } finally {
        await watch.stop();
      }
      return watch.seen.filter(({ source, args }) => source !== 'lua' && /^get$/i.test(args[0]) && args[1] === redisKey)
        .length;
    }

    it('answers the waiter in another process without its reading the key again', async () => {
      const holder = await start('H');
      const waiter = await start('W');
      const reads = await readsOf(key('article:5'), async () => {
        const loading = holder.articles.article(5);
        await waitFor('the holder to take the lease', () => holder.articles.runs === 1);
        const waiting = waiter.articles.article(5);
        expect(await loading).toBe('article 5 from H');
        expect(await waiting).toBe('article 5 from H');
      });
      expect(reads).toBe(2); // each app's first read: the waiter's value came with the release
      expect(waiter.articles.runs).toBe(0);
    });

    it(`not over ${CARRIED_VALUE_MAX_BYTES} bytes: a larger value is released by key, and the waiter reads it`, async () => {
      const holder = await start('H');
      const waiter = await start('W');
      holder.articles.padding = '.'.repeat(CARRIED_VALUE_MAX_BYTES);
      const reads = await readsOf(key('article:6'), async () => {
        const loading = holder.articles.article(6);
        await waitFor('the holder to take the lease', () => holder.articles.runs === 1);
        const waiting = waiter.articles.article(6);
        expect(await loading).toBe(`article 6 from H${holder.articles.padding}`);
        expect(await waiting).toBe(`article 6 from H${holder.articles.padding}`);
      });
      expect(reads).toBe(3);
      expect(waiter.articles.runs).toBe(0);
    });

    it("is not taken from a release under another lease's token (pub/sub is untrusted): the waiter reads the key", async () => {
      const holder = await start('H');
      const waiter = await start('W');
      // A well-formed entry of this namespace, another value: it would pass every check but the token's.
      await waiter.cache.set('article:forged', 'forged');
      const forged = (await redis.getBuffer(key('article:forged')))!;
      const channel = new BookkeepingKeys(ns, { keyPrefix: '', db: 0 }).leaseChannel;
      holder.articles.beforeReturn = async () => {
        // While the waiter waits for this lease: a release of its key that names another token.
        await redis.publish(channel, Buffer.concat([Buffer.from(`${key('article:7')}\0`), newLeaseToken(), forged]));
        await delay(100);
      };
      const reads = await readsOf(key('article:7'), async () => {
        const loading = holder.articles.article(7);
        await waitFor('the holder to take the lease', () => holder.articles.runs === 1);
        const waiting = waiter.articles.article(7);
        expect(await loading).toBe('article 7 from H');
        expect(await waiting).toBe('article 7 from H');
      });
      // Woken by the forged release, the waiter read the key (still leased) and waited again.
      expect(reads).toBe(3);
      expect(waiter.articles.runs).toBe(0);
    });
  });

  it('an `unless` that throws: the caller gets its value (fail open), nothing is stored and the lease goes back at once', async () => {
    const { articles, cache } = await start('A');
    expect(await articles.list(0)).toBeNull();
    expect(await redis.exists(key('list:0'))).toBe(0);
    // The next call takes a new lease at once instead of waiting for the old one.
    const { value, ms } = await timed(() => articles.list(0));
    expect(value).toBeNull();
    expect(ms).toBeLessThan(1_000);
    expect(cache.stats().errors).toBe(2); // counted each time, logged once
    expect(await articles.list(1)).toEqual({ items: ['item 1'] });
    expect(await redis.exists(key('list:1'))).toBe(1);
  });

  it('a lease taken after the app gave its leases back (closing) goes back at once, and nothing is stored', async () => {
    const { articles, engine } = await start('A');
    await engine.releaseLeases(); // the first step of closing
    const loading = articles.article(3);
    await waitFor('the method to run', () => articles.runs === 1);
    expect(await redis.exists(key('article:3'))).toBe(0);
    expect(await loading).toBe('article 3 from A');
    expect(await redis.exists(key('article:3'))).toBe(0);
  });

  it('a caller that saw nothing (or an older version) is told to read a newer entry being refreshed, not to wait', async () => {
    const { cache, engine } = await start('A');
    await cache.set('article:4', 'v1');
    const entryKey = key('article:4');
    const stamp = (await redis.getBuffer(entryKey))!.subarray(FRESH_UNTIL_OFFSET, LOAD_MS_OFFSET);
    const store = engine.store;
    // A refresh of this version holds its lease (the value stays readable meanwhile).
    expect(await store.acquireLease(entryKey, randomBytes(8), 5_000, stamp)).toEqual({ status: 'acquired' });
    // The same version: wait for the refresh.
    expect(await store.acquireLease(entryKey, randomBytes(8), 5_000, stamp)).toMatchObject({ status: 'held' });
    // Saw nothing, or another version: the entry there is newer, read it.
    expect(await store.acquireLease(entryKey, randomBytes(8), 5_000, '')).toEqual({ status: 'changed' });
    expect(await store.acquireLease(entryKey, randomBytes(8), 5_000, Buffer.alloc(8, 1))).toEqual({
      status: 'changed',
    });
  });
});
