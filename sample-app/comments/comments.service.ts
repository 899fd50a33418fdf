import { BadRequestException, Injectable, NotFoundException } from '@nestjs/common';
import { CacheEvict, Cacheable } from 'nestjs-redis-cache';
// Observable is a value import on purpose: the cache reads the declared return type from
// `design:returntype` metadata, which a type-only import would erase to `Object`.
import { defer, Observable } from 'rxjs';
import { isConstraintError } from '../database/sqlite-database.js';
import { PostsService } from '../posts/posts.service.js';
import type { Comment, CreateCommentInput } from './comment.model.js';
import { CommentsRepository } from './comments.repository.js';

/** Threads longer than this are served but not cached: they would make large, churning values. */
export const MAX_CACHED_THREAD = 500;

/** Comment threads, cached per post under `post:{id}:comments`. */
@Injectable()
export class CommentsService {
  constructor(
    private readonly comments: CommentsRepository,
    private readonly posts: PostsService,
  ) {}

  /**
   * A post's thread as an Observable (the cache stores the value it emits); null for an unknown
   * post, which is cached like any other answer.
   */
  @Cacheable({
    key: 'post:{0}:comments',
    ttl: 'user_feed',
    unless: (thread: Comment[] | null) => thread !== null && thread.length > MAX_CACHED_THREAD,
  })
  findByPost(postId: number): Observable<Comment[] | null> {
    // defer: nothing runs until the cache layer subscribes, and only on a miss.
    return defer(() => this.comments.findByPost(postId));
  }

  /** Adds a comment and evicts the thread, so the next read is a miss that includes it. */
  @CacheEvict({ key: 'post:{0}:comments' })
  async create(postId: number, input: CreateCommentInput): Promise<Comment> {
    if (!(await this.posts.exists(postId))) throw new NotFoundException(`Post ${postId} not found`);
    try {
      return await this.comments.create(postId, input);
    } catch (error) {
      if (isConstraintError(error, 'FOREIGNKEY')) throw new BadRequestException(`User ${input.userId} does not exist`);
      throw error;
    }
  }
}
