/**
 * Values shaped like what NestJS services cache, built from a seeded generator so every run
 * caches the same bytes: a user profile (10 fields, one Date) and a page of 50 posts.
 */

export interface BenchUser {
  id: number;
  email: string;
  name: string;
  role: 'admin' | 'member';
  active: boolean;
  emailVerified: boolean;
  karma: number;
  locale: string;
  avatarUrl: string;
  createdAt: Date;
}

export interface BenchPost {
  id: number;
  authorId: number;
  title: string;
  slug: string;
  excerpt: string;
  tags: string[];
  likes: number;
  publishedAt: Date;
}

/** mulberry32: small, fast and deterministic. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'cache redis nest module service value key ttl jitter stampede lock metric latency hit miss ' +
  'profile feed trending session user post comment tag author draft publish archive über café'
).split(' ');

function words(random: () => number, n: number): string {
  let text = '';
  for (let i = 0; i < n; i++) text += (i ? ' ' : '') + WORDS[Math.floor(random() * WORDS.length)];
  return text;
}

function dateNear(random: () => number, i: number): Date {
  return new Date(1_735_689_600_000 + i * 3_600_123 + Math.floor(random() * 1000));
}

/** The profile of user `id`; the same `id` always gives an equal value. */
export function makeUser(id: number): BenchUser {
  const random = prng(id);
  return {
    id,
    email: `user${id}@example.com`,
    name: `User ${id} ${words(random, 1)}`,
    role: id % 3 === 0 ? 'admin' : 'member',
    active: true,
    emailVerified: id % 2 === 0,
    karma: Math.round(random() * 100_000) / 100,
    locale: 'en-GB',
    avatarUrl: `https://cdn.example.com/avatars/${id}.png`,
    createdAt: dateNear(random, id),
  };
}

/** The latest `count` posts of author `authorId`; the same arguments always give an equal value. */
export function makePosts(authorId: number, count = 50): BenchPost[] {
  const random = prng(10_000 + authorId);
  return Array.from({ length: count }, (_, i) => {
    const id = authorId * 1_000 + i;
    return {
      id,
      authorId,
      title: words(random, 6),
      slug: `post-${id}-${words(random, 2).replace(/\s/g, '-')}`,
      excerpt: words(random, 30),
      tags: [words(random, 1), words(random, 1), words(random, 1)],
      likes: Math.floor(random() * 5000),
      publishedAt: dateNear(random, i),
    };
  });
}
