import { Injectable } from '@nestjs/common';
import { SqliteDatabase } from '../database/sqlite-database.js';
import type { UpdateUserInput, User } from './user.model.js';

interface UserRow {
  id: number;
  name: string;
  email: string;
  bio: string;
  created_at: string;
}

/** What deleting a user removed along with it (rows gone through `ON DELETE CASCADE`). */
export interface DeletedUser {
  /** The user's own posts. */
  postIds: number[];
  /** Posts, anyone's, whose comment threads lost a comment by this user. */
  commentedPostIds: number[];
}

/** SQL for users. Knows nothing of caching. */
@Injectable()
export class UsersRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async findById(id: number): Promise<User | null> {
    const row = await this.db.queryOne<UserRow>('SELECT * FROM users WHERE id = ?', id);
    return row ? toUser(row) : null;
  }

  /** The updated user, or null when no user has this id. Throws SQLite's UNIQUE error on a taken email. */
  async update(id: number, patch: UpdateUserInput): Promise<User | null> {
    const row = await this.db.executeReturning<UserRow>(
      `UPDATE users SET name = coalesce(?, name), email = coalesce(?, email), bio = coalesce(?, bio)
       WHERE id = ? RETURNING *`,
      patch.name ?? null,
      patch.email ?? null,
      patch.bio ?? null,
      id,
    );
    return row ? toUser(row) : null;
  }

  /** Deletes the user with their posts and comments; null when no user has this id. */
  async delete(id: number): Promise<DeletedUser | null> {
    // One transaction, so the ids reported are exactly the rows the cascade removed.
    return this.db.transaction((tx) => {
      const postIds = tx.all<{ id: number }>('SELECT id FROM posts WHERE user_id = ?', id).map((r) => r.id);
      const commentedPostIds = tx
        .all<{ post_id: number }>('SELECT DISTINCT post_id FROM comments WHERE user_id = ?', id)
        .map((r) => r.post_id);
      const { changes } = tx.run('DELETE FROM users WHERE id = ?', id);
      return changes === 0 ? null : { postIds, commentedPostIds };
    });
  }
}

function toUser(row: UserRow): User {
  return { id: row.id, name: row.name, email: row.email, bio: row.bio, createdAt: new Date(row.created_at) };
}
