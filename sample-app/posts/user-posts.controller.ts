import { Controller, Get, NotFoundException, Param, ParseIntPipe, Query } from '@nestjs/common';
import { ParseLimitPipe } from '../common/parse-limit.pipe.js';
import type { Post } from './post.model.js';
import { DEFAULT_FEED_LIMIT, PostsService } from './posts.service.js';

/** `GET /users/:id/posts`: lives with posts, whose service owns the feed. */
@Controller('users/:id/posts')
export class UserPostsController {
  constructor(private readonly posts: PostsService) {}

  @Get()
  async findByUser(
    @Param('id', ParseIntPipe) userId: number,
    @Query('limit', new ParseLimitPipe({ defaultValue: DEFAULT_FEED_LIMIT, max: 100 })) limit: number,
  ): Promise<Post[]> {
    const posts = await this.posts.findByUser(userId, limit);
    if (!posts) throw new NotFoundException(`User ${userId} not found`);
    return posts;
  }
}
