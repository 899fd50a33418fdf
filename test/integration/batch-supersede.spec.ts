// Batch reads after a change (core/read/batch-flights.ts): a batch that asks once a delete, a tag
// invalidation or a prefix clear has completed is never answered with a value that a load begun
// before it read from the source, whether that load is still running or has just landed. The
// single-key path detaches such loads too (SingleFlight.supersede). Found by a review: each case
// returned the old value before BatchFlights learnt to supersede.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { waitFor } from '../support/load-helpers.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';

@Injectable()
class Users {
  /** The source: id -> its current name. */
  db = new Map<number, string>();
  calls: number[][] = [];
  /** When set, a load waits for it after reading the source. */
  gate: Promise<void> | undefined;

  @Cacheable({ batch: { key: 'user:{0}' }, ttl: 60 })
  async findUsers(ids: number[]): Promise<Array<string | null>> {
    this.calls.push([...ids]);
    // Reads the source now, answers once the gate opens (a slow query).
    const snapshot = ids.map((id) => this.db.get(id) ?? null);
    await this.gate;
    return snapshot;
  }

  @Cacheable({ batch: { key: 'tagged:{0}' }, ttl: 60, tags: (_value: unknown, id: number) => [`u:${id}`] })
  async findTagged(ids: number[]): Promise<Array<string | null>> {
    this.calls.push([...ids]);
    const snapshot = ids.map((id) => this.db.get(id) ?? null);
    await this.gate;
    return snapshot;
  }
}

describe('batch reads after a write or an invalidation', () => {
  let app: INestApplication;
  let users: Users;
  let cache: CacheService;
  const redis = rawRedis();

  beforeEach(async () => {
    app = await createTestApp({ providers: [Users], cache: { namespace: uniqueNamespace('batch-supersede') } });
    users = app.get(Users);
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  /** Starts a load of id 1 that read 'old' from the source, then runs `invalidate` after the source changed. */
  async function loadThenInvalidate(
    find: (ids: number[]) => Promise<Array<string | null>>,
    invalidate: () => Promise<unknown>,
  ): Promise<{ first: Promise<Array<string | null>>; open: () => void }> {
    users.db.set(1, 'old');
    let open!: () => void;
    users.gate = new Promise((resolve) => (open = resolve));
    const first = find([1]);
    await waitFor('the first batch to read the source', () => users.calls.length === 1);
    users.db.set(1, 'new');
    await invalidate();
    return { first, open };
  }

  it.each([
    ['cache.del()', (ids: number[]) => users.findUsers(ids), () => cache.del('user:1')],
    ['invalidateTags()', (ids: number[]) => users.findTagged(ids), () => cache.invalidateTags(['u:1'])],
    ['clear(prefix)', (ids: number[]) => users.findUsers(ids), () => cache.clear('user:')],
  ])(
    'a batch that starts after %s completed is not answered with a value loaded before it',
    async (_, find, invalidate) => {
      const { first, open } = await loadThenInvalidate(find, invalidate);
      // The change has resolved and the source says 'new': this call asks only now.
      const second = find([1]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      users.gate = undefined;
      open();
      expect(await first).toEqual(['old']);
      expect(await second).toEqual(['new']);
    },
  );
});
