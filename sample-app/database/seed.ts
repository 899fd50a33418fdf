import type { Database } from 'better-sqlite3';

export const SEED_USERS = 50;
export const SEED_POSTS = 200;
export const SEED_COMMENTS = 1000;

const FIRST_NAMES = ['Ada', 'Alan', 'Barbara', 'Dennis', 'Edsger', 'Frances', 'Grace', 'Ken', 'Leslie', 'Margaret'];
const LAST_NAMES = [
  'Lovelace',
  'Turing',
  'Liskov',
  'Ritchie',
  'Dijkstra',
  'Allen',
  'Hopper',
  'Thompson',
  'Lamport',
  'Hamilton',
];
const TOPICS = [
  'caching',
  'Redis',
  'NestJS',
  'SQLite',
  'TTL jitter',
  'cache stampedes',
  'write-through',
  'eviction',
  'observability',
  'latency',
];
const SEED_EPOCH = Date.UTC(2024, 0, 1);
const HOUR = 3_600_000;

/**
 * Fills an empty database with the same users, posts and comments on every machine, so examples
 * in the README and assertions in the e2e tests can name ids. Does nothing if users exist.
 */
export function seedDatabase(db: Database): void {
  const { count } = db.prepare('SELECT COUNT(*) AS count FROM users').get() as { count: number };
  if (count > 0) return;

  // A fixed-seed generator instead of Math.random(): the data must not differ between runs.
  const random = mulberry32(42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const at = (hours: number) => new Date(SEED_EPOCH + hours * HOUR).toISOString();

  const insertUser = db.prepare('INSERT INTO users (id, name, email, bio, created_at) VALUES (?, ?, ?, ?, ?)');
  const insertPost = db.prepare(
    'INSERT INTO posts (id, user_id, title, body, likes, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const insertComment = db.prepare(
    'INSERT INTO comments (id, post_id, user_id, body, created_at) VALUES (?, ?, ?, ?, ?)',
  );

  db.transaction(() => {
    for (let id = 1; id <= SEED_USERS; id++) {
      const first = FIRST_NAMES[(id - 1) % FIRST_NAMES.length]!;
      const last = LAST_NAMES[Math.floor((id - 1) / FIRST_NAMES.length) % LAST_NAMES.length]!;
      insertUser.run(
        id,
        `${first} ${last}`,
        `${first}.${last}.${id}@example.com`.toLowerCase(),
        `Writes about ${pick(TOPICS)}.`,
        at(id),
      );
    }
    for (let id = 1; id <= SEED_POSTS; id++) {
      const topic = pick(TOPICS);
      const userId = 1 + Math.floor(random() * SEED_USERS);
      insertPost.run(
        id,
        userId,
        `Notes on ${topic} #${id}`,
        `A post about ${topic}.`,
        Math.floor(random() * 500),
        at(SEED_USERS + id),
      );
    }
    for (let id = 1; id <= SEED_COMMENTS; id++) {
      const postId = 1 + Math.floor(random() * SEED_POSTS);
      const userId = 1 + Math.floor(random() * SEED_USERS);
      insertComment.run(id, postId, userId, `Comment ${id} on ${pick(TOPICS)}.`, at(SEED_USERS + SEED_POSTS + id));
    }
  })();
}

/** mulberry32: a small seeded PRNG (tests replay schedules with it too). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
