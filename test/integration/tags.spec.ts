// Tags: entries carry tags (static, or computed from the result and the arguments), and
// invalidating a tag — by `@CacheEvict({ tags })` or `CacheService.invalidateTags` — makes every
// entry under it unservable at once, for hits, stale-while-revalidate and grace alike, in this app
// and in any other on the same Redis. The cost of an invalidation does not depend on how many
// entries carry the tag (counted in commands, watched with MONITOR).
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheEvict, CachePut, CacheService, RedisCacheConfigError } from 'nestjs-redis-cache';
import { timed, waitFor, waitUntilStale } from '../support/load-helpers.js';
import { watchCommands } from '../support/monitor.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { bookkeeping } from '../support/redis-keys.js';
import { delay } from '../support/timing.js';

interface Post {
  id: number;
  authorId: number;
  title: string;
}

/** A tiny "database" shared by the apps of a test, and a service caching reads of it with tags. */
class Posts {
  readonly rows = new Map<number, Post>();
  constructor() {
    for (let id = 1; id <= 6; id++) this.rows.set(id, { id, authorId: id <= 3 ? 1 : 2, title: `post ${id}` });
  }
}

@Injectable()
class PostService {
  db = new Posts();
  loads = { byAuthor: 0, post: 0, trending: 0, graced: 0, slow: 0 };
  loadDelayMs = 0;
  failing = false;

  /** Tagged by author (from the arguments) and by every post in the list (from the result). */
  @Cacheable({
    key: 'author:{0}:posts',
    ttl: 60,
    tags: (posts: Post[], authorId: number) => [`author:${authorId}`, ...posts.map((post) => `post:${post.id}`)],
  })
  async byAuthor(authorId: number): Promise<Post[]> {
    this.loads.byAuthor++;
    // Read first, answer later: an edit during the delay makes this value old.
    const rows = [...this.db.rows.values()].filter((post) => post.authorId === authorId).map((post) => ({ ...post }));
    await delay(this.loadDelayMs);
    return rows;
  }

  @Cacheable({ key: 'post:{0}', ttl: 60, tags: 'posts' })
  async post(id: number): Promise<Post | null> {
    this.loads.post++;
    return { ...this.db.rows.get(id)! };
  }

  @Cacheable({ key: 'trending', ttl: '300ms', staleWhileRevalidate: 30, tags: ['posts', 'trending'] })
  async trending(): Promise<string> {
    this.loads.trending++;
    await delay(this.loadDelayMs);
    return `trending v${this.loads.trending}`;
  }

  @Cacheable({ key: 'graced', ttl: '300ms', grace: 30, tags: 'posts' })
  async graced(): Promise<string> {
    this.loads.graced++;
    if (this.failing) throw new Error('source down');
    return `graced v${this.loads.graced}`;
  }

  @CachePut({ key: 'post:{0}', ttl: 60, tags: (post: Post) => [`post:${post.id}`, `author:${post.authorId}`] })
  async rename(id: number, title: string): Promise<Post> {
    const post = this.db.rows.get(id)!;
    post.title = title;
    return { ...post };
  }

  @CacheEvict({ tags: (id: number) => [`post:${id}`] })
  async touch(id: number): Promise<void> {
    this.db.rows.get(id)!.title += '!';
  }

  @CacheEvict({ tags: 'posts' })
  async reindex(): Promise<void> {}
}

describe('tags', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let ns: string;

  async function start(db?: Posts) {
    const app = await createTestApp({ providers: [PostService], cache: { namespace: ns, jitter: 0 } });
    apps.push(app);
    const posts = app.get(PostService);
    if (db) posts.db = db;
    return { app, posts, cache: app.get(CacheService) };
  }

  beforeEach(() => {
    ns = uniqueNamespace('tags');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('invalidating a tag from the arguments drops its entries, and only those', async () => {
    const { posts, cache } = await start();
    await posts.byAuthor(1);
    await posts.byAuthor(2);
    await posts.byAuthor(1);
    expect(posts.loads.byAuthor).toBe(2);

    await cache.invalidateTags('author:1');
    await posts.byAuthor(2); // another tag: still a hit
    expect(posts.loads.byAuthor).toBe(2);
    await posts.byAuthor(1);
    expect(posts.loads.byAuthor).toBe(3);
    await posts.byAuthor(1); // the reload is cached again
    expect(posts.loads.byAuthor).toBe(3);
    expect(cache.stats().byName['PostService.byAuthor']).toMatchObject({ hits: 3, misses: 3 });
  });

  it('tags from the result: touching one post invalidates every list that contains it', async () => {
    const { posts } = await start();
    expect((await posts.byAuthor(1)).map((post) => post.title)).toEqual(['post 1', 'post 2', 'post 3']);
    await posts.byAuthor(2);
    await posts.touch(2); // @CacheEvict({ tags: id => [`post:${id}`] })
    expect((await posts.byAuthor(1)).map((post) => post.title)).toEqual(['post 1', 'post 2!', 'post 3']);
    expect(posts.loads.byAuthor).toBe(3);
    await posts.byAuthor(2); // author 2's list does not contain post 2
    expect(posts.loads.byAuthor).toBe(3);
  });

  it('@CachePut stores with its tags; invalidating one of them drops the written entry', async () => {
    const { posts, cache } = await start();
    await posts.rename(4, 'renamed');
    expect(await cache.get('post:4')).toEqual({ id: 4, authorId: 2, title: 'renamed' });
    expect(await posts.post(4)).toEqual({ id: 4, authorId: 2, title: 'renamed' }); // a hit on the put's value
    expect(posts.loads.post).toBe(0);
    await cache.invalidateTags('author:2');
    expect(await cache.get('post:4')).toBeUndefined();
    await posts.post(4);
    expect(posts.loads.post).toBe(1);
  });

  it('CacheService.set and getOrSet take tags too', async () => {
    const { cache } = await start();
    await cache.set('report:a', { total: 1 }, { tags: ['reports', 'team:1'] });
    let loads = 0;
    const load = () =>
      cache.getOrSet('report:b', async () => ({ total: ++loads }), { tags: (r) => [`total:${r.total}`] });
    expect(await load()).toEqual({ total: 1 });
    expect(await cache.get('report:a')).toEqual({ total: 1 });
    await cache.invalidateTags(['team:1']);
    expect(await cache.get('report:a')).toBeUndefined();
    expect(await load()).toEqual({ total: 1 }); // untouched: tagged total:1 only
    await cache.invalidateTags('total:1');
    expect(await load()).toEqual({ total: 2 });
  });

  it('an invalidated entry is not served stale: a stale-while-revalidate call waits for the method', async () => {
    const { posts } = await start();
    posts.loadDelayMs = 200;
    expect(await posts.trending()).toBe('trending v1');
    await waitUntilStale(redis, `${ns}:trending`);
    // Without the invalidation this would be an immediate stale answer.
    await posts.reindex(); // @CacheEvict({ tags: 'posts' })
    const { value, ms } = await timed(() => posts.trending());
    expect(value).toBe('trending v2');
    expect(ms).toBeGreaterThanOrEqual(180);
  });

  it('an invalidated entry is no grace fallback: the caller gets the method error', async () => {
    const { posts, cache } = await start();
    expect(await posts.graced()).toBe('graced v1');
    await waitUntilStale(redis, `${ns}:graced`);
    posts.failing = true;
    expect(await posts.graced()).toBe('graced v1'); // within grace: the fallback
    await cache.invalidateTags('posts');
    await expect(posts.graced()).rejects.toThrow('source down');
    expect(cache.stats().byName['PostService.graced'].fallbacks).toBe(1);
  });

  it('a tag invalidated while a value loads: the caller gets it, but it is not stored', async () => {
    const { posts, cache } = await start();
    posts.loadDelayMs = 200;
    const loading = posts.byAuthor(1);
    await waitFor('the load to start', () => posts.loads.byAuthor === 1);
    await cache.invalidateTags('post:3');
    expect(await loading).toHaveLength(3);
    expect(await redis.exists(`${ns}:author:1:posts`)).toBe(0); // not written, and the lease is gone
    posts.loadDelayMs = 0;
    await posts.byAuthor(1);
    expect(posts.loads.byAuthor).toBe(2);
  });

  it('across apps: an invalidation in one app is seen by the next read in the other; a load racing it stores nothing', async () => {
    const db = new Posts();
    const a = await start(db);
    const b = await start(db);
    await a.posts.byAuthor(1);
    await b.posts.byAuthor(1); // a hit on A's value
    expect(a.posts.loads.byAuthor + b.posts.loads.byAuthor).toBe(1);
    db.rows.get(1)!.title = 'edited';
    await b.cache.invalidateTags('post:1');
    expect((await a.posts.byAuthor(1))[0]!.title).toBe('edited');

    a.posts.loadDelayMs = 200;
    await a.cache.invalidateTags('post:1');
    const listKey = `${ns}:author:1:posts`;
    const invalidEntry = await redis.getBuffer(listKey);
    const loading = a.posts.byAuthor(1);
    await waitFor('the load to start', () => a.posts.loads.byAuthor === 3);
    db.rows.get(1)!.title = 'edited twice';
    await b.cache.invalidateTags('post:1');
    expect((await loading)[0]!.title).toBe('edited'); // read before the edit
    // And not written: the tag moved on meanwhile (the old entry stays, invalid, until replaced).
    expect(await redis.getBuffer(listKey)).toEqual(invalidEntry);
    expect((await b.posts.byAuthor(1))[0]!.title).toBe('edited twice');
  });

  it('a call right after an invalidation does not join a load that began before it', async () => {
    const { posts, cache } = await start();
    posts.loadDelayMs = 200;
    const before = posts.byAuthor(1);
    await waitFor('the load to start', () => posts.loads.byAuthor === 1);
    posts.db.rows.get(2)!.title = 'changed';
    await cache.invalidateTags('post:2');
    const after = await posts.byAuthor(1);
    expect(after[1]!.title).toBe('changed');
    expect((await before)[1]!.title).toBe('post 2');
  });

  it("a tag's key outlives every entry of the tag, also once invalidated", async () => {
    const { cache } = await start();
    await cache.set('long', 1, { ttl: '2h', tags: 'keeper' });
    await cache.set('short', 1, { ttl: 60, tags: 'keeper' });
    const entryTtl = await redis.pttl(`${ns}:long`);
    expect(await redis.pttl(bookkeeping(ns).tag('keeper'))).toBeGreaterThan(entryTtl);
    await cache.invalidateTags('keeper');
    expect(await redis.pttl(bookkeeping(ns).tag('keeper'))).toBeGreaterThan(entryTtl);
  });

  it('an entry whose tag key is gone (evicted) is not served', async () => {
    const { posts } = await start();
    await posts.post(1);
    await redis.del(bookkeeping(ns).tag('posts'));
    await posts.post(1);
    expect(posts.loads.post).toBe(2);
    await posts.post(1); // stored again, with the tag key back
    expect(posts.loads.post).toBe(2);
  });

  it('invalidation costs the same commands with 1 or 300 entries under the tag (no SCAN, no per-entry work)', async () => {
    const { cache } = await start();
    const commandsOfInvalidation = async (entries: number, tag: string) => {
      for (let i = 0; i < entries; i++) await cache.set(`e:${tag}:${i}`, i, { tags: tag });
      const watch = await watchCommands(redis);
      try {
        await cache.invalidateTags(tag);
      } finally {
        await watch.stop();
      }
      // The commands sent, not the ones the scripts run inside Redis (MONITOR reports those as 'lua'),
      // nor the announcement to in-process tiers (sent while some instance may keep one: here only
      // until the app learns that none does), nor the heartbeat.
      const seen = watch.seen.filter(
        ({ args, source }) =>
          source !== 'lua' &&
          args.some((arg) => arg.includes(ns)) &&
          !args.some(
            (arg) =>
              arg === bookkeeping(ns).l1Channel ||
              arg === bookkeeping(ns).presence ||
              // the subscription's heartbeat, a PUBLISH every second
              arg.startsWith(`${bookkeeping(ns).leaseChannel}:`),
          ),
      );
      for (let i = 0; i < entries; i++) expect(await cache.get(`e:${tag}:${i}`)).toBeUndefined();
      // A script's first run on a node also sends it whole (EVAL): not part of the cost.
      return seen.map(({ args }) => args[0]!.toLowerCase()).filter((command) => command !== 'eval');
    };
    const few = await commandsOfInvalidation(1, 'few');
    const many = await commandsOfInvalidation(300, 'many');
    expect(many).toEqual(few);
    // The epoch bump and the tags' markers: one script (the tag keys share the epoch key's slot).
    expect(many).toEqual(['evalsha']);
    expect(few).not.toContain('scan');
  });

  it('bad tags fail at class definition; a tags function returning garbage stores nothing, and the caller gets its value', async () => {
    expect(() => {
      class Bad {
        @Cacheable({ key: 'x', tags: [42 as unknown as string] })
        async x(): Promise<number> {
          return 1;
        }
      }
      return Bad;
    }).toThrow(RedisCacheConfigError);
    expect(() => {
      class Bad {
        @CacheEvict({ tags: '' })
        async x(): Promise<number> {
          return 1;
        }
      }
      return Bad;
    }).toThrow(/non-empty string/);

    @Injectable()
    class Garbage {
      @Cacheable({ key: 'garbage', tags: () => [null as unknown as string] })
      async load(): Promise<number> {
        return 1;
      }
    }
    const app = await createTestApp({ providers: [Garbage], cache: { namespace: ns } });
    apps.push(app);
    // Fail open: the tags are the cache's business, the value is the caller's.
    expect(await app.get(Garbage).load()).toBe(1);
    expect(await redis.exists(`${ns}:garbage`)).toBe(0); // nothing stored, no lease left behind
    expect(app.get(CacheService).stats().byName['Garbage.load'].errors).toBe(1);
  });
});
