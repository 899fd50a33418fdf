import { BadRequestException, Injectable } from '@nestjs/common';
import { CacheEvict, CachePut, CacheService, Cacheable } from 'nestjs-redis-cache';
import { isConstraintError } from '../database/sqlite-database.js';
import type { CreatePostInput, Post } from './post.model.js';
import { PostsRepository } from './posts.repository.js';

/** The page size of `GET /users/:id/posts` when the client names none; only this page is cached. */
export const DEFAULT_FEED_LIMIT = 20;

/**
 * Posts. Cache keys: `post:{id}` (filled by PostsController and by `create`), `user:{id}:posts`
 * (a user's default feed page) and `posts:trending:{limit}`.
 */
@Injectable()
export class PostsService {
  constructor(
    private readonly posts: PostsRepository,
    private readonly cache: CacheService,
  ) {}

  /** Uncached on purpose: PostsController caches the response of `GET /posts/:id` itself. */
  findById(id: number): Promise<Post | null> {
    return this.posts.findById(id);
  }

  exists(id: number): Promise<boolean> {
    return this.posts.exists(id);
  }

  /**
   * A user's newest posts; null for an unknown user. Only the default page is cached (the one
   * profile pages load); other page sizes bypass the cache instead of each taking a key, which is
   * also why the key need not contain the limit.
   */
  @Cacheable({
    key: (userId: number) => `user:${userId}:posts`,
    ttl: 'user_feed',
    condition: (_userId: number, limit: number) => limit === DEFAULT_FEED_LIMIT,
  })
  findByUser(userId: number, limit: number): Promise<Post[] | null> {
    return this.posts.findByUser(userId, limit);
  }

  /**
   * Cached imperatively with `getOrSet`: the same read-through as `@Cacheable`, for code that wants
   * the cache as a value rather than a decorator. The hottest key of the app, so it never makes a
   * caller wait on expiry: for a minute past its TTL the old list is served while one instance
   * recomputes it, and for an hour it is the fallback when the query fails or takes over 500 ms.
   */
  findTrending(limit: number): Promise<Post[]> {
    return this.cache.getOrSet(`posts:trending:${limit}`, () => this.posts.findTrending(limit), {
      ttl: 'trending',
      staleWhileRevalidate: '1m',
      grace: '1h',
      timeout: 500,
      name: 'PostsService.findTrending',
    });
  }

  /**
   * Stores the new post under the key `GET /posts/:id` reads (the id comes from the result), drops
   * the author's cached feed, and every trending list: a new post shifts the trending window.
   */
  @CachePut({ key: { fromResult: (post: Post) => `post:${post.id}` }, ttl: 'static' })
  @CacheEvict({ keys: (input: CreatePostInput) => [`user:${input.userId}:posts`] })
  @CacheEvict({ allEntries: 'posts:trending:' })
  async create(input: CreatePostInput): Promise<Post> {
    try {
      return await this.posts.create(input);
    } catch (error) {
      if (isConstraintError(error, 'FOREIGNKEY')) throw new BadRequestException(`User ${input.userId} does not exist`);
      throw error;
    }
  }
}
