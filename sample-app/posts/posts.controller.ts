import { Body, Controller, Get, NotFoundException, Param, ParseIntPipe, Post as HttpPost, Query } from '@nestjs/common';
import { Cacheable } from 'nestjs-redis-cache';
import { ParseBodyPipe } from '../common/parse-body.pipe.js';
import { ParseLimitPipe } from '../common/parse-limit.pipe.js';
import { parseCreatePost } from './create-post.input.js';
import type { CreatePostInput, Post } from './post.model.js';
import { PostsService } from './posts.service.js';

@Controller('posts')
export class PostsController {
  constructor(private readonly posts: PostsService) {}

  // Declared before `:id`, which would otherwise match "trending" and fail ParseIntPipe.
  @Get('trending')
  findTrending(@Query('limit', new ParseLimitPipe({ defaultValue: 10, max: 50 })) limit: number): Promise<Post[]> {
    return this.posts.findTrending(limit);
  }

  /**
   * Cached on the controller rather than in the service, as a route-level cache would be. Posts are
   * immutable here (only deleted, with their author, which evicts them), hence the `static` profile.
   * A 404 throws, and a method that throws is never cached. The hottest reads of the app, and they never
   * change: kept in memory too (an in-process tier of 1,000 posts, each at most a minute; a deletion
   * anywhere drops every instance's copy).
   */
  @Cacheable({ key: 'post:{0}', ttl: 'static', l1: { max: 1_000, ttl: '1m' } })
  @Get(':id')
  async findOne(@Param('id', ParseIntPipe) id: number): Promise<Post> {
    const post = await this.posts.findById(id);
    if (!post) throw new NotFoundException(`Post ${id} not found`);
    return post;
  }

  @HttpPost()
  create(@Body(new ParseBodyPipe(parseCreatePost)) input: CreatePostInput): Promise<Post> {
    return this.posts.create(input);
  }
}
