import { Injectable } from '@nestjs/common';
import { SqliteDatabase } from '../database/sqlite-database.js';
import type { Comment, CreateCommentInput } from './comment.model.js';

interface CommentRow {
  id: number;
  post_id: number;
  user_id: number;
  body: string;
  created_at: string;
}

/** SQL for comments. Knows nothing of caching. */
@Injectable()
export class CommentsRepository {
  constructor(private readonly db: SqliteDatabase) {}

  /** The post's thread, oldest first, or null when no post has this id. */
  async findByPost(postId: number): Promise<Comment[] | null> {
    // LEFT JOIN from posts: no row means no such post; NULL comment columns mean an empty thread.
    const rows = await this.db.query<Partial<CommentRow>>(
      `SELECT c.* FROM posts p LEFT JOIN comments c ON c.post_id = p.id
       WHERE p.id = ? ORDER BY c.created_at, c.id`,
      postId,
    );
    if (rows.length === 0) return null;
    return rows.filter((row): row is CommentRow => row.id != null).map(toComment);
  }

  /** Throws SQLite's FOREIGNKEY error when the post or the user does not exist. */
  async create(postId: number, input: CreateCommentInput): Promise<Comment> {
    const row = await this.db.executeReturning<CommentRow>(
      'INSERT INTO comments (post_id, user_id, body, created_at) VALUES (?, ?, ?, ?) RETURNING *',
      postId,
      input.userId,
      input.body,
      new Date().toISOString(),
    );
    return toComment(row!);
  }
}

function toComment(row: CommentRow): Comment {
  return { id: row.id, postId: row.post_id, userId: row.user_id, body: row.body, createdAt: new Date(row.created_at) };
}
