import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { CacheEvict, CachePut, CacheService, Cacheable } from 'nestjs-redis-cache';
import { isConstraintError } from '../database/sqlite-database.js';
import type { UpdateUserInput, User } from './user.model.js';
import { UsersRepository } from './users.repository.js';

/**
 * Users, cached under `user:{id}`.
 *
 * Cache keys this service owns (see sample-app/README.md for the full list):
 * `user:{id}` (profile, also negative: null for an unknown id) and `user:{id}:posts` (evicted here,
 * filled by PostsService).
 */
@Injectable()
export class UsersService {
  constructor(
    private readonly users: UsersRepository,
    private readonly cache: CacheService,
  ) {}

  /**
   * Null for an unknown id, and that null is cached too (for `nullTtl`), so clients probing ids
   * that do not exist cannot keep the database busy.
   */
  @Cacheable({ key: 'user:{0}', ttl: 'user_profile' })
  findById(id: number): Promise<User | null> {
    return this.users.findById(id);
  }

  /**
   * Write-through: the updated user replaces the cached profile, so the next read is a hit with the
   * new values. A missing user or a taken email throws, and a method that throws stores nothing.
   */
  @CachePut({ key: 'user:{0}', ttl: 'user_profile' })
  async update(id: number, patch: UpdateUserInput): Promise<User> {
    let user: User | null;
    try {
      user = await this.users.update(id, patch);
    } catch (error) {
      if (isConstraintError(error, 'UNIQUE')) throw new ConflictException('email is taken');
      throw error;
    }
    if (!user) throw new NotFoundException(`User ${id} not found`);
    return user;
  }

  /**
   * Deletes the user with their posts and comments. The decorators evict what the id names; the
   * cascaded rows' keys depend on what the database removed, so those are deleted by hand.
   */
  @CacheEvict({ keys: (id: number) => [`user:${id}`, `user:${id}:posts`] })
  @CacheEvict({ allEntries: 'posts:trending:' })
  async remove(id: number): Promise<void> {
    const removed = await this.users.delete(id);
    if (!removed) throw new NotFoundException(`User ${id} not found`);
    const threads = new Set([...removed.postIds, ...removed.commentedPostIds]);
    const keys = [
      ...removed.postIds.map((postId) => `post:${postId}`),
      ...[...threads].map((postId) => `post:${postId}:comments`),
    ];
    if (keys.length > 0) await this.cache.del(...keys);
  }
}
