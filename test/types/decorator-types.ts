// Type-level tests of the cache decorators, checked by `npm run typecheck` (tsconfig includes test/).
// Each `@ts-expect-error` line must produce a compile error, or the typecheck fails; the other
// declarations must compile. Never executed.
import { Observable, of } from 'rxjs';
import { Cacheable, CacheEvict, CachePut } from 'nestjs-redis-cache';

interface User {
  id: number;
  name: string;
}

export class AcceptedByTheCompiler {
  @Cacheable()
  async promise(): Promise<number> {
    return 1;
  }

  @Cacheable({ key: 'user:{0}', ttl: '5m' })
  findUser(id: number): Promise<User | null> {
    return Promise.resolve({ id, name: 'x' });
  }

  @Cacheable({ ttl: 'user_profile', condition: (id: number) => id > 0, unless: (user: User | null) => user === null })
  observable(id: number): Observable<User> {
    return of({ id, name: 'x' });
  }

  @CachePut({ key: { fromResult: (user: User) => `user:${user.id}` } })
  async save(user: User): Promise<User> {
    return user;
  }

  @CacheEvict({ keys: (id: number) => [`user:${id}`], beforeInvocation: true })
  @CacheEvict({ allEntries: 'users:' })
  async remove(_id: number): Promise<void> {}

  @Cacheable({ lockTtl: '30s', lockWait: 2_000, staleWhileRevalidate: 60, grace: '1h', timeout: '300ms' })
  async trending(): Promise<User[]> {
    return [];
  }

  @Cacheable({ lock: false, earlyRefresh: true })
  async hot(): Promise<number> {
    return 1;
  }

  @Cacheable({
    key: 'team:{0}',
    tags: (users: User[], team: number) => [`team:${team}`, ...users.map((u) => `user:${u.id}`)],
  })
  async team(_team: number): Promise<User[]> {
    return [];
  }

  @CachePut({ key: 'user:{0}', tags: ['users'] })
  @CacheEvict({ tags: (id: number) => `user:${id}` })
  async rename(id: number): Promise<User> {
    return { id, name: 'x' };
  }

  @CachePut({ key: 'trending', staleWhileRevalidate: '1m', grace: '1h' })
  async recompute(): Promise<User[]> {
    return [];
  }
}

export class RejectedByTheCompiler {
  // @ts-expect-error -- a plain number cannot be served from the cache
  @Cacheable()
  foo(): number {
    return 1;
  }

  // @ts-expect-error -- a plain string
  @CachePut({ key: 'k' })
  bar(): string {
    return 'x';
  }

  // @ts-expect-error -- void: nothing to wait for
  @CacheEvict({ key: 'k' })
  baz(): void {}

  // @ts-expect-error -- a duration needs a unit the parser knows
  @Cacheable({ lockTtl: '30 seconds' })
  async badDuration(): Promise<number> {
    return 1;
  }

  // @ts-expect-error -- a write-through always runs the method: nothing to lock
  @CachePut({ key: 'k', lock: true })
  async putWithLock(): Promise<number> {
    return 1;
  }

  // @ts-expect-error -- CachePut needs a key
  @CachePut({})
  async noKey(): Promise<number> {
    return 1;
  }

  // @ts-expect-error -- allEntries is true or a prefix, not false
  @CacheEvict({ allEntries: false })
  async notAll(): Promise<void> {}

  // @ts-expect-error -- tags are strings
  @Cacheable({ tags: [1, 2] })
  async numericTags(): Promise<number> {
    return 1;
  }

  // @ts-expect-error -- cacheNull belongs to @Cacheable
  @CachePut({ key: 'k', cacheNull: false })
  async putNull(): Promise<null> {
    return null;
  }
}
