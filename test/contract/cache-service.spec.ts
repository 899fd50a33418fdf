// CacheService, tags and prefix clears as CONTRACT.md and the README state them, on whichever store the
// project runs (contract-app.ts).
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Cacheable, CacheEvict, CachePut } from 'nestjs-redis-cache';
import { createContractApp, delay, type ContractApp } from './contract-app.js';

interface Post {
  id: number;
  author: number;
  version: number;
}

@Injectable()
class FeedService {
  loads = 0;
  version = 1;

  @Cacheable({
    key: 'author:{0}:posts',
    tags: (posts: Post[], author: number) => [`author:${author}`, ...posts.map((post) => `post:${post.id}`)],
  })
  async postsOf(author: number): Promise<Post[]> {
    this.loads++;
    return [{ id: author * 10, author, version: this.version }];
  }

  @Cacheable({ key: 'post:{0}', tags: (post: Post) => [`post:${post.id}`] })
  async post(id: number): Promise<Post> {
    this.loads++;
    return { id, author: Math.floor(id / 10), version: this.version };
  }

  @CachePut({ key: 'post:{0}', tags: (post: Post) => [`post:${post.id}`] })
  async edit(id: number): Promise<Post> {
    this.version++;
    return { id, author: Math.floor(id / 10), version: this.version };
  }

  @CacheEvict({ tags: (id: number) => [`post:${id}`] })
  async remove(_id: number): Promise<void> {}
}

describe('CacheService, tags and prefixes', () => {
  let contract: ContractApp;

  beforeEach(async () => {
    contract = await createContractApp({ providers: [FeedService], cache: { ttl: 60 } });
  });
  afterEach(() => contract.close());

  it('get/set/del: values by logical key, with a TTL, deletions counted', async () => {
    const { cache } = contract;
    expect(await cache.get('report')).toBeUndefined();
    await cache.set('report', { rows: [1, 2] });
    await cache.set('short', 'lives a second', { ttl: 1 });
    await cache.set('user:alice@example.com', 'hashed key part');
    expect(await cache.get('report')).toEqual({ rows: [1, 2] });
    expect(await cache.get('user:alice@example.com')).toBe('hashed key part');
    expect(await cache.get('short')).toBe('lives a second');
    await contract.wait(1_100);
    expect(await cache.get('short')).toBeUndefined();
    expect(await cache.get('report')).toEqual({ rows: [1, 2] });
    expect(await cache.del('report', 'user:alice@example.com', 'never-set')).toBe(2);
    expect(await cache.get('report')).toBeUndefined();
  });

  it('getOrSet loads once for concurrent callers and stores the value', async () => {
    let loads = 0;
    const loader = async () => {
      loads++;
      await delay(30);
      return { computed: loads };
    };
    const values = await Promise.all(Array.from({ length: 50 }, () => contract.cache.getOrSet('stats', loader)));
    expect(values).toEqual(Array.from({ length: 50 }, () => ({ computed: 1 })));
    expect(await contract.cache.getOrSet('stats', loader)).toEqual({ computed: 1 });
    expect(loads).toBe(1);
    expect(contract.cache.stats().byName['CacheService.getOrSet']).toMatchObject({ misses: 50, hits: 1 });
  });

  it('clear(prefix) hides everything under the prefix (literal), and clear() the whole namespace', async () => {
    const { cache } = contract;
    await cache.set('posts:1', 'a');
    await cache.set('posts:2', 'b');
    await cache.set('postscript', 'c');
    await cache.set('users:1', 'd');
    expect(await cache.clear('posts:')).toBe(1);
    expect(await cache.get('posts:1')).toBeUndefined();
    expect(await cache.get('posts:2')).toBeUndefined();
    expect(await cache.get('postscript')).toBe('c');
    expect(await cache.get('users:1')).toBe('d');
    // Written after the clear: served.
    await cache.set('posts:1', 'again');
    expect(await cache.get('posts:1')).toBe('again');
    await cache.clear();
    expect(await cache.get('users:1')).toBeUndefined();
    expect(await cache.get('posts:1')).toBeUndefined();
  });

  it('reclaim(prefix) deletes the keys under the prefix', async () => {
    const { cache } = contract;
    await cache.set('old:1', 1);
    await cache.set('old:2', 2);
    await cache.set('kept', 3);
    expect(await cache.reclaim('old:')).toBe(2);
    expect(await cache.get('old:1')).toBeUndefined();
    expect(await cache.get('kept')).toBe(3);
  });

  it('invalidateTags hides every entry of the tags, decorated or set, and nothing else', async () => {
    const feed = contract.get(FeedService);
    const { cache } = contract;
    await feed.postsOf(1);
    await feed.postsOf(2);
    await cache.set('report', 'tagged', { tags: ['reports', 'author:1'] });
    await cache.set('other', 'untagged');
    await cache.invalidateTags(['author:1']);
    expect(await cache.get('report')).toBeUndefined();
    expect(await cache.get('other')).toBe('untagged');
    await feed.postsOf(1);
    await feed.postsOf(2);
    expect(feed.loads).toBe(3);
    // Loaded after the invalidation: served.
    await feed.postsOf(1);
    expect(feed.loads).toBe(3);
  });

  it('a @CacheEvict({ tags }) reaches every list that carries the tag; a @CachePut with tags is served', async () => {
    const feed = contract.get(FeedService);
    await feed.postsOf(1); // tagged post:10
    await feed.post(10);
    expect(feed.loads).toBe(2);
    expect(await feed.edit(10)).toMatchObject({ version: 2 });
    expect(await feed.post(10)).toMatchObject({ version: 2 });
    expect(feed.loads).toBe(2);
    await feed.remove(10);
    expect(await feed.postsOf(1)).toEqual([{ id: 10, author: 1, version: 2 }]);
    expect(await feed.post(10)).toMatchObject({ version: 2 });
    expect(feed.loads).toBe(4);
  });

  it('getOrSet with tags: a value loaded before an invalidation of its tag is not served after it', async () => {
    const { cache } = contract;
    let version = 1;
    const load = () =>
      cache.getOrSet('team:7', async () => ({ version }), { tags: (value) => [`team:${value.version}`, 'teams'] });
    expect(await load()).toEqual({ version: 1 });
    version = 2;
    expect(await load()).toEqual({ version: 1 });
    await cache.invalidateTags('teams');
    expect(await load()).toEqual({ version: 2 });
  });
});
