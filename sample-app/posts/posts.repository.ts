import { Injectable } from '@nestjs/common';
import { SqliteDatabase } from '../database/sqlite-database.js';
import type { CreatePostInput, Post } from './post.model.js';

interface PostRow {
  id: number;
  user_id: number;
  title: string;
  body: string;
  likes: number;
  created_at: string;
}

/** How many of the newest posts compete for the trending list. */
export const TRENDING_WINDOW = 50;

/** SQL for posts. Knows nothing of caching. */
@Injectable()
export class PostsRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async findById(id: number): Promise<Post | null> {
    const row = await this.db.queryOne<PostRow>('SELECT * FROM posts WHERE id = ?', id);
    return row ? toPost(row) : null;
  }

  async exists(id: number): Promise<boolean> {
    const row = await this.db.queryOne<{ found: number }>(
      'SELECT EXISTS (SELECT 1 FROM posts WHERE id = ?) AS found',
      id,
    );
    return row?.found === 1;
  }

  /** The user's newest posts, or null when no user has this id (an empty list means: no posts yet). */
  async findByUser(userId: number, limit: number): Promise<Post[] | null> {
    // One query answers both questions: no row at all means no such user; a row whose post
    // columns are NULL (the LEFT JOIN found nothing) means a user without posts.
    const rows = await this.db.query<Partial<PostRow>>(
      `SELECT p.* FROM users u LEFT JOIN posts p ON p.user_id = u.id
       WHERE u.id = ? ORDER BY p.created_at DESC, p.id DESC LIMIT ?`,
      userId,
      limit,
    );
    if (rows.length === 0) return null;
    return rows.filter((row): row is PostRow => row.id != null).map(toPost);
  }

  /** The most liked among the {@link TRENDING_WINDOW} newest posts. */
  async findTrending(limit: number): Promise<Post[]> {
    const rows = await this.db.query<PostRow>(
      `SELECT * FROM (SELECT * FROM posts ORDER BY created_at DESC, id DESC LIMIT ?)
       ORDER BY likes DESC, id DESC LIMIT ?`,
      TRENDING_WINDOW,
      limit,
    );
    return rows.map(toPost);
  }

  /** Throws SQLite's FOREIGNKEY error when `userId` names no user. */
  async create(input: CreatePostInput): Promise<Post> {
    const row = await this.db.executeReturning<PostRow>(
      'INSERT INTO posts (user_id, title, body, likes, created_at) VALUES (?, ?, ?, 0, ?) RETURNING *',
      input.userId,
      input.title,
      input.body,
      new Date().toISOString(),
    );
    return toPost(row!);
  }
}

function toPost(row: PostRow): Post {
  return {
    id: row.id,
    userId: row.user_id,
    title: row.title,
    body: row.body,
    likes: row.likes,
    createdAt: new Date(row.created_at),
  };
}
