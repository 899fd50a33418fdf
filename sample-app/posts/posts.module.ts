import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module.js';
import { PostsController } from './posts.controller.js';
import { PostsRepository } from './posts.repository.js';
import { PostsService } from './posts.service.js';
import { UserPostsController } from './user-posts.controller.js';

@Module({
  imports: [DatabaseModule],
  controllers: [PostsController, UserPostsController],
  providers: [PostsRepository, PostsService],
  exports: [PostsService],
})
export class PostsModule {}
