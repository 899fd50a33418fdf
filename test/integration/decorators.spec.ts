// Every option of @Cacheable, @CachePut and @CacheEvict against a real Redis, and how the three
// compose on one method. Keys are checked in Redis itself, so a wrong key or a missing write fails.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { isObservable, lastValueFrom, Observable, of, defer, throwError } from 'rxjs';
import { Cacheable, CacheEvict, CachePut, CacheService } from 'nestjs-redis-cache';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { holdsValue, scanEntryKeys, scanValueKeys } from '../support/redis-keys.js';
import { delay } from '../support/timing.js';

interface Post {
  id: number;
  title: string;
}

@Injectable()
class PostsService {
  runs: Record<string, number> = {};
  private count(name: string): void {
    this.runs[name] = (this.runs[name] ?? 0) + 1;
  }

  @Cacheable({ key: (id: number) => `post:${id}` })
  async byFunction(id: number): Promise<Post> {
    this.count('byFunction');
    return { id, title: `t${id}` };
  }

  @Cacheable({ key: 'post:{0.id}:comments:{1}' })
  async comments(post: { id: number }, page: number): Promise<string[]> {
    this.count('comments');
    return [`c${post.id}.${page}`];
  }

  @Cacheable({ key: 'even:{0}', condition: (n: number) => n % 2 === 0 })
  async onlyEven(n: number): Promise<number> {
    this.count('onlyEven');
    return n;
  }

  @Cacheable({ key: 'unless:{0}', unless: (result: number[], n: number) => result.length === 0 || n === 13 })
  async unlessEmpty(n: number): Promise<number[]> {
    this.count('unlessEmpty');
    return n < 0 ? [] : [n];
  }

  @Cacheable({ key: 'maybe:{0}' })
  async maybeNull(id: number): Promise<Post | null | undefined> {
    this.count('maybeNull');
    return id === 0 ? null : id === -1 ? undefined : { id, title: 'x' };
  }

  @Cacheable({ key: 'nonull:{0}', cacheNull: false })
  async noNullCaching(_id: number): Promise<Post | null> {
    this.count('noNullCaching');
    return null;
  }

  @Cacheable({ key: 'named:{0}', name: 'posts-by-id' })
  async named(id: number): Promise<number> {
    this.count('named');
    return id;
  }

  @Cacheable({ key: 'fails:{0}' })
  async fails(_id: number): Promise<number> {
    this.count('fails');
    throw new Error('source down');
  }

  // --- CachePut
  @CachePut({ key: 'post:{0}' })
  async update(id: number, title: string): Promise<Post> {
    this.count('update');
    return { id, title };
  }

  @CachePut({ key: { fromResult: (post: Post) => `post:${post.id}` } })
  async create(title: string): Promise<Post> {
    this.count('create');
    return { id: 500 + title.length, title };
  }

  @CachePut({ key: 'post:{0}', condition: (id: number) => id !== 99, unless: (post: Post) => post.title === 'draft' })
  async guardedUpdate(id: number, title: string): Promise<Post> {
    this.count('guardedUpdate');
    return { id, title };
  }

  @CachePut({ key: 'post:{0}' })
  async failingUpdate(_id: number): Promise<Post> {
    this.count('failingUpdate');
    throw new Error('write failed');
  }

  // --- CacheEvict
  @CacheEvict({ key: 'post:{0}' })
  async remove(_id: number): Promise<void> {
    this.count('remove');
  }

  @CacheEvict({ key: (id: number) => `post:${id}` })
  async removeByFunction(_id: number): Promise<void> {}

  @CacheEvict({ keys: (id: number) => [`post:${id}`, `post:${id}:comments:1`, `post:${id}:comments:2`] })
  async removeWithComments(_id: number): Promise<void> {}

  @CacheEvict({ allEntries: 'post:' })
  async removeAllPosts(): Promise<void> {}

  @CacheEvict({ allEntries: true })
  async removeEverything(): Promise<void> {}

  @CacheEvict({ key: 'post:{0}', condition: (id: number) => id > 100 })
  async removeIfBig(_id: number): Promise<void> {}

  @CacheEvict({ key: 'post:{0}' })
  async removeThenThrow(_id: number): Promise<void> {
    throw new Error('delete failed');
  }

  @CacheEvict({ key: 'post:{0}', beforeInvocation: true })
  async removeBeforeThenThrow(_id: number): Promise<void> {
    throw new Error('delete failed');
  }

  /** Sees what is in the cache while it runs: evicted before it runs, after it resolves. */
  seenDuringRun: unknown = 'not run';
  constructor(private readonly cache: CacheService) {}
  @CacheEvict({ key: 'post:{0}', beforeInvocation: true })
  async removeBefore(id: number): Promise<void> {
    this.seenDuringRun = await this.cache.get(`post:${id}`);
  }
  @CacheEvict({ key: 'post:{0}' })
  async removeAfter(id: number): Promise<void> {
    this.seenDuringRun = await this.cache.get(`post:${id}`);
  }
  @CacheEvict({ key: 'post:{0}', beforeInvocation: false })
  async removeAfterExplicit(id: number): Promise<void> {
    this.seenDuringRun = await this.cache.get(`post:${id}`);
  }

  // --- composition
  @CacheEvict({ key: 'posts:list' })
  @CachePut({ key: 'post:{0}' })
  async rename(id: number, title: string): Promise<Post> {
    this.count('rename');
    return { id, title };
  }

  @Cacheable({ key: 'post:{0}' })
  @CacheEvict({ key: 'views:{0}' })
  async readAndResetViews(id: number): Promise<Post> {
    this.count('readAndResetViews');
    return { id, title: 'viewed' };
  }

  @CacheEvict({ key: 'posts:list' })
  @CacheEvict({ key: 'posts:count' })
  @CachePut({ key: 'post:{0}' })
  @CachePut({ key: 'post-by-title:{1}' })
  async save(id: number, title: string): Promise<Post> {
    return { id, title };
  }

  @Cacheable({ key: 'post:{0}' })
  @CachePut({ key: 'post-copy:{0}' })
  async cacheableAndPut(id: number): Promise<Post> {
    this.count('cacheableAndPut');
    return { id, title: `run${this.runs.cacheableAndPut}` };
  }

  // --- Observables
  @Cacheable({ key: 'obs:{0}' })
  observe(id: number): Observable<Post> {
    this.count('observe');
    return of({ id, title: 'first' }, { id, title: 'last' });
  }

  @Cacheable({ key: 'obs-fail:{0}' })
  observeFailing(_id: number): Observable<Post> {
    this.count('observeFailing');
    return throwError(() => new Error('stream failed'));
  }

  @CachePut({ key: 'post:{0}' })
  observePut(id: number): Observable<Post> {
    return defer(() => of({ id, title: 'from observable' }));
  }

  // --- this.other()
  @Cacheable({ key: 'page:{0}' })
  async page(id: number): Promise<{ post: Post; comments: string[] }> {
    this.count('page');
    return { post: await this.byFunction(id), comments: await this.comments({ id }, 1) };
  }
}

describe('cache decorators', () => {
  let app: INestApplication;
  let posts: PostsService;
  let cache: CacheService;
  let ns: string;
  const redis = rawRedis();
  const has = (key: string) => holdsValue(redis, `${ns}:${key}`);
  const decoded = (key: string) => cache.get(key);

  beforeEach(async () => {
    ns = uniqueNamespace('deco');
    app = await createTestApp({ providers: [PostsService], cache: { namespace: ns } });
    posts = app.get(PostsService);
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  describe('@Cacheable', () => {
    it('key function: stores under exactly the returned key, serves it next time', async () => {
      expect(await posts.byFunction(1)).toEqual({ id: 1, title: 't1' });
      expect(await posts.byFunction(1)).toEqual({ id: 1, title: 't1' });
      expect(posts.runs.byFunction).toBe(1);
      expect(await scanEntryKeys(redis, `${ns}:*`)).toEqual([`${ns}:post:1`]);
    });

    it('template with {0.id} and {1}', async () => {
      await posts.comments({ id: 7 }, 3);
      await posts.comments({ id: 7 }, 3);
      await posts.comments({ id: 7 }, 4);
      expect(posts.runs.comments).toBe(2);
      expect(await scanEntryKeys(redis, `${ns}:*`)).toEqual([`${ns}:post:7:comments:3`, `${ns}:post:7:comments:4`]);
    });

    it('condition false bypasses the cache entirely: runs every time, stores nothing', async () => {
      await posts.onlyEven(3);
      await posts.onlyEven(3);
      expect(posts.runs.onlyEven).toBe(2);
      expect(await has('even:3')).toBe(false);
      await posts.onlyEven(4);
      await posts.onlyEven(4);
      expect(posts.runs.onlyEven).toBe(3);
      expect(await has('even:4')).toBe(true);
    });

    it('condition false does not even read: a value already stored is not served', async () => {
      await cache.set('even:5', 'stale');
      expect(await posts.onlyEven(5)).toBe(5);
    });

    it('unless true returns the result without storing it (unless sees the arguments too)', async () => {
      expect(await posts.unlessEmpty(-1)).toEqual([]);
      expect(await posts.unlessEmpty(-1)).toEqual([]);
      expect(posts.runs.unlessEmpty).toBe(2);
      expect(await has('unless:-1')).toBe(false);
      expect(await posts.unlessEmpty(13)).toEqual([13]);
      expect(await has('unless:13')).toBe(false);
      await posts.unlessEmpty(2);
      expect(await has('unless:2')).toBe(true);
    });

    it('caches null and undefined by default (negative caching)', async () => {
      expect(await posts.maybeNull(0)).toBeNull();
      expect(await posts.maybeNull(0)).toBeNull();
      expect(await posts.maybeNull(-1)).toBeUndefined();
      expect(await posts.maybeNull(-1)).toBeUndefined();
      expect(posts.runs.maybeNull).toBe(2);
      expect(await has('maybe:0')).toBe(true);
      expect(await has('maybe:-1')).toBe(true);
    });

    it('cacheNull: false does not store null', async () => {
      expect(await posts.noNullCaching(1)).toBeNull();
      expect(await posts.noNullCaching(1)).toBeNull();
      expect(posts.runs.noNullCaching).toBe(2);
      expect(await has('nonull:1')).toBe(false);
    });

    it('name: the calls are counted under it', async () => {
      await posts.named(1);
      await posts.named(1);
      const { byName } = cache.stats();
      expect(byName['posts-by-id']).toMatchObject({ hits: 1, misses: 1 });
      expect(byName['PostsService.named']).toBeUndefined();
    });

    it('a method that rejects: the error reaches the caller unchanged, nothing is cached', async () => {
      await expect(posts.fails(1)).rejects.toThrow('source down');
      await expect(posts.fails(1)).rejects.toThrow('source down');
      expect(posts.runs.fails).toBe(2);
      expect(await has('fails:1')).toBe(false);
    });

    it('a method calling another decorated method through this: all three are cached', async () => {
      const first = await posts.page(4);
      expect(await posts.page(4)).toEqual(first);
      expect(posts.runs).toMatchObject({ page: 1, byFunction: 1, comments: 1 });
      expect(await scanEntryKeys(redis, `${ns}:*`)).toEqual(
        [`${ns}:page:4`, `${ns}:post:4`, `${ns}:post:4:comments:1`].sort(),
      );
      // The inner methods serve from the cache when called by another path.
      await posts.byFunction(4);
      expect(posts.runs.byFunction).toBe(1);
    });
  });

  describe('@CachePut', () => {
    it('always runs and writes its result, so the next @Cacheable read sees it', async () => {
      await posts.byFunction(1);
      await posts.update(1, 'new');
      await posts.update(1, 'newer');
      expect(posts.runs.update).toBe(2);
      expect(await posts.byFunction(1)).toEqual({ id: 1, title: 'newer' });
      expect(posts.runs.byFunction).toBe(1);
    });

    it('key from the result', async () => {
      const created = await posts.create('hello');
      expect(created.id).toBe(505);
      expect(await decoded('post:505')).toEqual({ id: 505, title: 'hello' });
    });

    it('condition false and unless true store nothing', async () => {
      await posts.guardedUpdate(99, 'skipped');
      expect(await has('post:99')).toBe(false);
      await posts.guardedUpdate(5, 'draft');
      expect(await has('post:5')).toBe(false);
      await posts.guardedUpdate(5, 'final');
      expect(await decoded('post:5')).toEqual({ id: 5, title: 'final' });
      expect(posts.runs.guardedUpdate).toBe(3);
    });

    it('a method that rejects stores nothing and leaves the old entry', async () => {
      await posts.update(3, 'kept');
      await expect(posts.failingUpdate(3)).rejects.toThrow('write failed');
      expect(await decoded('post:3')).toEqual({ id: 3, title: 'kept' });
    });
  });

  describe('@CacheEvict', () => {
    beforeEach(async () => {
      for (const id of [1, 2]) {
        await posts.update(id, `p${id}`);
        await posts.comments({ id }, 1);
        await posts.comments({ id }, 2);
      }
      await cache.set('other:1', 'x');
    });

    it('key template', async () => {
      await posts.remove(1);
      expect(await has('post:1')).toBe(false);
      expect(await has('post:2')).toBe(true);
    });

    it('key function', async () => {
      await posts.removeByFunction(2);
      expect(await has('post:2')).toBe(false);
      expect(await has('post:1')).toBe(true);
    });

    it('keys: every key of the list', async () => {
      await posts.removeWithComments(1);
      expect(await scanValueKeys(redis, `${ns}:*`)).toEqual(
        [`${ns}:post:2`, `${ns}:post:2:comments:1`, `${ns}:post:2:comments:2`, `${ns}:other:1`].sort(),
      );
    });

    it('allEntries with a prefix: everything under it is no longer served, nothing else', async () => {
      await posts.removeAllPosts();
      // O(1): a new generation for the prefix; the keys are left to expire.
      for (const key of ['post:1', 'post:2', 'post:1:comments:1', 'post:2:comments:2']) {
        expect(await cache.get(key)).toBeUndefined();
      }
      expect(await cache.get('other:1')).toBe('x');
      expect(await has('post:1')).toBe(true);
    });

    it('allEntries: true invalidates the namespace and only the namespace', async () => {
      const neighbour = `${ns}-neighbour:post:1`;
      await redis.set(neighbour, 'x', 'PX', 60_000);
      await posts.removeEverything();
      for (const key of ['post:1', 'post:2:comments:1', 'other:1']) expect(await cache.get(key)).toBeUndefined();
      expect(await redis.exists(neighbour)).toBe(1);
      await redis.del(neighbour);
    });

    it('condition false evicts nothing', async () => {
      await posts.removeIfBig(1);
      expect(await has('post:1')).toBe(true);
    });

    it('a method that throws evicts nothing (beforeInvocation defaults to false)', async () => {
      await expect(posts.removeThenThrow(1)).rejects.toThrow('delete failed');
      expect(await has('post:1')).toBe(true);
    });

    it('beforeInvocation: true evicts even when the method then throws', async () => {
      await expect(posts.removeBeforeThenThrow(1)).rejects.toThrow('delete failed');
      expect(await has('post:1')).toBe(false);
    });

    it('beforeInvocation: true evicts before the method runs; false (and the default) after it resolved', async () => {
      await posts.removeBefore(1);
      expect(posts.seenDuringRun).toBeUndefined();
      expect(await has('post:1')).toBe(false);

      await posts.removeAfter(2);
      expect(posts.seenDuringRun).toEqual({ id: 2, title: 'p2' });
      expect(await has('post:2')).toBe(false);

      await posts.update(2, 'again');
      await posts.removeAfterExplicit(2);
      expect(posts.seenDuringRun).toEqual({ id: 2, title: 'again' });
      expect(await has('post:2')).toBe(false);
    });
  });

  describe('composition on one method', () => {
    it('@CacheEvict + @CachePut: writes the entry and evicts the list', async () => {
      await cache.set('posts:list', [1, 2]);
      await posts.rename(1, 'renamed');
      expect(await decoded('post:1')).toEqual({ id: 1, title: 'renamed' });
      expect(await has('posts:list')).toBe(false);
    });

    it('two @CachePut and two @CacheEvict all apply', async () => {
      await cache.set('posts:list', [1]);
      await cache.set('posts:count', 1);
      await posts.save(8, 'eight');
      expect(await decoded('post:8')).toEqual({ id: 8, title: 'eight' });
      expect(await decoded('post-by-title:eight')).toEqual({ id: 8, title: 'eight' });
      expect(await has('posts:list')).toBe(false);
      expect(await has('posts:count')).toBe(false);
    });

    it('@Cacheable + @CacheEvict: caches the result and evicts on every call, hit or miss (as Spring does)', async () => {
      await cache.set('views:3', 10);
      expect(await posts.readAndResetViews(3)).toEqual({ id: 3, title: 'viewed' });
      expect(await has('post:3')).toBe(true);
      expect(await has('views:3')).toBe(false);
      await cache.set('views:3', 11);
      await posts.readAndResetViews(3);
      expect(posts.runs.readAndResetViews).toBe(1);
      expect(await has('views:3')).toBe(false);
    });

    it('@Cacheable + @CachePut: the method always runs (as in Spring) and both keys are written', async () => {
      await posts.cacheableAndPut(6);
      expect(await posts.cacheableAndPut(6)).toEqual({ id: 6, title: 'run2' });
      expect(posts.runs.cacheableAndPut).toBe(2);
      expect(await decoded('post:6')).toEqual({ id: 6, title: 'run2' });
      expect(await decoded('post-copy:6')).toEqual({ id: 6, title: 'run2' });
    });
  });

  describe('Observable methods', () => {
    it('return a lazy Observable; its last value is cached and served as an Observable', async () => {
      const first = posts.observe(1);
      expect(isObservable(first)).toBe(true);
      // Give an eager implementation time to read Redis, run the method and write: none of it happens.
      await delay(100);
      expect(posts.runs.observe).toBeUndefined();
      expect(await has('obs:1')).toBe(false);
      expect(cache.stats().byName['PostsService.observe']).toBeUndefined();

      expect(await lastValueFrom(first)).toEqual({ id: 1, title: 'last' });
      expect(posts.runs.observe).toBe(1);
      expect(await decoded('obs:1')).toEqual({ id: 1, title: 'last' });

      const second = posts.observe(1);
      expect(isObservable(second)).toBe(true);
      expect(await lastValueFrom(second)).toEqual({ id: 1, title: 'last' });
      expect(posts.runs.observe).toBe(1);
      expect(cache.stats().byName['PostsService.observe']).toMatchObject({ hits: 1, misses: 1 });
    });

    it('an Observable that errors delivers the error and is not cached', async () => {
      await expect(lastValueFrom(posts.observeFailing(1))).rejects.toThrow('stream failed');
      await expect(lastValueFrom(posts.observeFailing(1))).rejects.toThrow('stream failed');
      expect(posts.runs.observeFailing).toBe(2);
      expect(await has('obs-fail:1')).toBe(false);
    });

    it('@CachePut on an Observable method writes when subscribed, not before', async () => {
      const put = posts.observePut(9);
      await delay(100);
      expect(await has('post:9')).toBe(false);
      expect(await lastValueFrom(put)).toEqual({ id: 9, title: 'from observable' });
      expect(await decoded('post:9')).toEqual({ id: 9, title: 'from observable' });
    });
  });
});
