import { Body, Controller, Get, NotFoundException, Param, ParseIntPipe, Post } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { ParseBodyPipe } from '../common/parse-body.pipe.js';
import type { Comment, CreateCommentInput } from './comment.model.js';
import { CommentsService } from './comments.service.js';
import { parseCreateComment } from './create-comment.input.js';

@Controller('posts/:id/comments')
export class CommentsController {
  constructor(private readonly comments: CommentsService) {}

  @Get()
  findByPost(@Param('id', ParseIntPipe) postId: number): Observable<Comment[]> {
    return this.comments.findByPost(postId).pipe(
      map((thread) => {
        if (!thread) throw new NotFoundException(`Post ${postId} not found`);
        return thread;
      }),
    );
  }

  @Post()
  create(
    @Param('id', ParseIntPipe) postId: number,
    @Body(new ParseBodyPipe(parseCreateComment)) input: CreateCommentInput,
  ): Promise<Comment> {
    return this.comments.create(postId, input);
  }
}
