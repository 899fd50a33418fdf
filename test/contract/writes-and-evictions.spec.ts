// @CachePut and @CacheEvict as CONTRACT.md and the README state them, on whichever store the project
// runs (contract-app.ts).
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Cacheable, CacheEvict, CachePut } from 'nestjs-redis-cache';
import { createContractApp, type ContractApp } from './contract-app.js';

interface Post {
  id: number;
  title: string;
}

@Injectable()
class PostsService {
  loads = 0;
  readonly db = new Map<number, Post>();

  @Cacheable({ key: 'post:{0}' })
  async find(id: number): Promise<Post | null> {
    this.loads++;
    return this.db.get(id) ?? null;
  }

  @Cacheable({ key: 'post:{0}:comments' })
  async comments(id: number): Promise<string[]> {
    this.loads++;
    return [`comment on ${this.db.get(id)?.title ?? 'nothing'}`];
  }

  @Cacheable({ key: 'authors:{0}' })
  async author(id: number): Promise<string> {
    this.loads++;
    return `author ${id} (${this.loads})`;
  }

  @CachePut({ key: 'post:{0}' })
  async update(id: number, title: string): Promise<Post> {
    const post = { id, title };
    this.db.set(id, post);
    return post;
  }

  @CachePut({ key: { fromResult: (post: Post) => `post:${post.id}` } })
  async create(title: string): Promise<Post> {
    const post = { id: this.db.size + 100, title };
    this.db.set(post.id, post);
    return post;
  }

  @CacheEvict({ key: 'post:{0}' })
  async remove(id: number): Promise<void> {
    this.db.delete(id);
  }

  @CacheEvict({ keys: (id: number) => [`post:${id}`, `post:${id}:comments`] })
  async removeWithComments(id: number): Promise<void> {
    this.db.delete(id);
  }

  @CacheEvict({ key: 'post:{0}' })
  async failingRemove(_id: number): Promise<void> {
    throw new Error('refused');
  }

  @CacheEvict({ key: 'post:{0}', beforeInvocation: true })
  async failingRemoveBefore(_id: number): Promise<void> {
    throw new Error('refused');
  }

  @CacheEvict({ allEntries: 'post:' })
  async reimportPosts(): Promise<void> {}

  @CacheEvict({ allEntries: true })
  async reimportEverything(): Promise<void> {}
}

describe('@CachePut and @CacheEvict', () => {
  let contract: ContractApp;
  let posts: PostsService;

  beforeEach(async () => {
    contract = await createContractApp({ providers: [PostsService] });
    posts = contract.get(PostsService);
    posts.db.set(1, { id: 1, title: 'first' });
    posts.db.set(2, { id: 2, title: 'second' });
  });
  afterEach(() => contract.close());

  it('@CachePut always runs the method and writes its result through before the call resolves', async () => {
    expect(await posts.find(1)).toEqual({ id: 1, title: 'first' });
    expect(await posts.update(1, 'edited')).toEqual({ id: 1, title: 'edited' });
    expect(await posts.update(1, 'edited again')).toEqual({ id: 1, title: 'edited again' });
    expect(await posts.find(1)).toEqual({ id: 1, title: 'edited again' });
    expect(posts.loads).toBe(1);
    expect(await contract.cache.get('post:1')).toEqual({ id: 1, title: 'edited again' });
    expect(contract.cache.stats().byName['PostsService.update']).toMatchObject({ bypasses: 2 });
  });

  it('@CachePut keys by the result with fromResult', async () => {
    const created = await posts.create('new');
    expect(await posts.find(created.id)).toEqual(created);
    expect(posts.loads).toBe(0);
  });

  it('@CacheEvict removes the key after the method resolved', async () => {
    await posts.find(1);
    await posts.remove(1);
    expect(await contract.cache.get('post:1')).toBeUndefined();
    expect(await posts.find(1)).toBeNull();
    expect(posts.loads).toBe(2);
  });

  it('@CacheEvict({ keys }) removes every key the function names', async () => {
    await posts.find(2);
    await posts.comments(2);
    await posts.removeWithComments(2);
    expect(await posts.find(2)).toBeNull();
    expect(await posts.comments(2)).toEqual(['comment on nothing']);
    expect(posts.loads).toBe(4);
  });

  it('a method that throws evicts nothing, unless beforeInvocation', async () => {
    await posts.find(1);
    await expect(posts.failingRemove(1)).rejects.toThrow('refused');
    expect(await posts.find(1)).toEqual({ id: 1, title: 'first' });
    expect(posts.loads).toBe(1);
    await expect(posts.failingRemoveBefore(1)).rejects.toThrow('refused');
    expect(await posts.find(1)).toEqual({ id: 1, title: 'first' });
    expect(posts.loads).toBe(2);
  });

  it('@CacheEvict({ allEntries: prefix }) invalidates everything under the prefix, and nothing else', async () => {
    await posts.find(1);
    await posts.comments(1);
    await posts.author(1);
    await posts.reimportPosts();
    await posts.find(1);
    await posts.comments(1);
    expect(posts.loads).toBe(5);
    expect(await posts.author(1)).toBe('author 1 (3)');
    // Loaded after the clear: served again.
    await posts.find(1);
    expect(posts.loads).toBe(5);
  });

  it('@CacheEvict({ allEntries: true }) invalidates the whole namespace', async () => {
    await posts.find(1);
    await posts.author(1);
    await posts.reimportEverything();
    await posts.find(1);
    expect(await posts.author(1)).toBe('author 1 (4)');
    expect(posts.loads).toBe(4);
  });

  it('an eviction made while a load runs keeps the (older) loaded value out of the cache', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const loading = contract.cache.getOrSet('post:9', async () => {
      await gate;
      return 'loaded before the eviction';
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The load's lease counts as what was there.
    expect(await contract.cache.del('post:9')).toBe(1);
    release();
    expect(await loading).toBe('loaded before the eviction');
    expect(await contract.cache.get('post:9')).toBeUndefined();
  });
});
