// Batch reads (issue 11, item 3): CacheService.getMany and @Cacheable({ batch }) list loaders, on the
// project's Redis (one server, or the 3+3 cluster: keys across slots). MONITOR shows the MGETs.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { Observable, of } from 'rxjs';
import { Cacheable, CacheService, RedisCacheConfigError } from 'nestjs-redis-cache';
import { watchCommands } from '../support/monitor.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis } from '../support/own-redis.js';
import { LogRecorder } from '../support/fault-helpers.js';
import { waitFor } from '../support/load-helpers.js';
import { createTestApp, rawRedis, testTopology, uniqueNamespace } from '../support/test-app.js';

interface User {
  id: number;
  name: string;
  team: string;
}

const userOf = (id: number): User => ({ id, name: `user ${id}`, team: id % 2 === 0 ? 'even' : 'odd' });

@Injectable()
class UsersService {
  /** The ids each call of `findUsers` was given, in order. */
  calls: number[][] = [];
  singleLoads = 0;
  /** Ids the source does not know (answered null). */
  unknown = new Set<number>([404]);
  /** When set, `findUsers` answers this instead. */
  answer: ((ids: number[]) => unknown) | undefined;
  failFor: number | undefined;
  /** When set, `findUsers` waits for it before answering. */
  gate: Promise<void> | undefined;

  @Cacheable({
    batch: { key: 'user:{0}' },
    ttl: 60,
    tags: (user: User | null, id: number) => [`team:${user?.team ?? id}`],
  })
  async findUsers(ids: number[]): Promise<Array<User | null>> {
    this.calls.push(Array.isArray(ids) ? [...ids] : (ids as never));
    await new Promise((resolve) => setImmediate(resolve));
    await this.gate;
    if (this.failFor !== undefined && ids.includes(this.failFor)) throw new Error(`no ${this.failFor}`);
    if (this.answer) return this.answer(ids) as Array<User | null>;
    return ids.map((id) => (this.unknown.has(id) ? null : userOf(id)));
  }

  @Cacheable({ key: 'user:{0}', ttl: 60 })
  async findUser(id: number): Promise<User | null> {
    this.singleLoads++;
    return userOf(id);
  }

  @Cacheable({ batch: { key: 'profile:{0.id}' }, cacheNull: false })
  async profiles(refs: Array<{ id: number }>, suffix: string): Promise<Array<string | null>> {
    this.calls.push(refs.map((ref) => ref.id));
    return refs.map((ref) => (ref.id === 0 ? null : `profile ${ref.id}${suffix}`));
  }

  @Cacheable({ batch: true, condition: (ids: number[]) => ids.length < 100, unless: (value: number) => value === 0 })
  async plain(ids: number[]): Promise<number[]> {
    this.calls.push([...ids]);
    return ids.map((id) => id * 10);
  }

  @Cacheable({ batch: { key: (id: number) => `obs:${id}` } })
  observed(ids: number[]): Observable<number[]> {
    this.calls.push([...ids]);
    return of(ids.map((id) => -id));
  }
}

const FIND = 'UsersService.findUsers';

describe('batch reads', () => {
  let app: INestApplication;
  let users: UsersService;
  let cache: CacheService;
  let ns: string;
  let logs: LogRecorder;
  const redis = rawRedis();

  beforeEach(async () => {
    ns = uniqueNamespace('batch');
    logs = new LogRecorder();
    app = await createTestApp({ providers: [UsersService], cache: { namespace: ns, nullTtl: 5 }, logger: logs });
    users = app.get(UsersService);
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  /** How many distinct hash slots `keys` (logical) fall in: the MGETs one read takes on a cluster. */
  const slotsOf = (keys: readonly string[]) =>
    testTopology() === 'cluster' ? new Set(keys.map((key) => calculateSlot(`${ns}:${key}`))).size : 1;

  /** The MGETs (and all commands) `work` sends, per MONITOR. */
  async function commandsOf(work: () => Promise<unknown>): Promise<string[][]> {
    const watch = await watchCommands(redis);
    try {
      await work();
    } finally {
      await watch.stop();
    }
    return watch.seen.filter(({ source }) => source !== 'lua').map(({ args }) => args);
  }

  describe('CacheService.getMany', () => {
    it("answers in the caller's order, duplicates and misses included", async () => {
      await cache.set('a', 1);
      await cache.set('b', { two: 2 });
      await cache.set('nil', null);
      expect(await cache.getMany(['b', 'x', 'a', 'b', 'nil', 'a'])).toEqual([
        { two: 2 },
        undefined,
        1,
        { two: 2 },
        null,
        1,
      ]);
      expect(await cache.getMany(['x', 'y'])).toEqual([undefined, undefined]);
    });

    it('reads with one MGET per slot, and an empty list asks nothing', async () => {
      const keys = Array.from({ length: 40 }, (_, i) => `k:${i}`);
      for (const [i, key] of keys.entries()) if (i % 2 === 0) await cache.set(key, i);
      let values: unknown[] = [];
      const sent = await commandsOf(async () => {
        values = await cache.getMany(keys);
        expect(await cache.getMany([])).toEqual([]);
      });
      expect(values).toEqual(keys.map((_, i) => (i % 2 === 0 ? i : undefined)));
      const mgets = sent.filter(([command]) => command.toLowerCase() === 'mget');
      expect(sent.filter(([command]) => command.toLowerCase() !== 'mget')).toEqual([]);
      expect(mgets).toHaveLength(slotsOf(keys));
      expect(mgets.flatMap((args) => args.slice(1)).sort()).toEqual(keys.map((key) => `${ns}:${key}`).sort());
    });

    it('does not serve entries whose tag was invalidated or whose prefix was cleared', async () => {
      await cache.set('post:1', 'one', { tags: ['author:7'] });
      await cache.set('post:2', 'two');
      await cache.set('page:1', 'page');
      expect(await cache.getMany(['post:1', 'post:2', 'page:1'])).toEqual(['one', 'two', 'page']);
      await cache.invalidateTags(['author:7']);
      expect(await cache.getMany(['post:1', 'post:2', 'page:1'])).toEqual([undefined, 'two', 'page']);
      await cache.clear('post:');
      expect(await cache.getMany(['post:1', 'post:2', 'page:1'])).toEqual([undefined, undefined, 'page']);
    });

    it('answers a garbage entry as a miss, deletes it, counts it as an error; the other keys are served', async () => {
      await cache.set('good', 'value');
      await redis.set(`${ns}:junk`, 'not a cache payload', 'PX', 60_000);
      expect(await cache.getMany(['junk', 'good'])).toEqual([undefined, 'value']);
      expect(await redis.exists(`${ns}:junk`)).toBe(0);
      expect(cache.stats().errors).toBe(1);
    });

    it('hashes keys as get does (same entries)', async () => {
      await cache.set('user:alice@example.com', 'alice');
      expect(await cache.getMany(['user:alice@example.com'])).toEqual([await cache.get('user:alice@example.com')]);
    });

    it('refuses what is not an array of strings with a RedisCacheConfigError', async () => {
      await expect(cache.getMany('a' as unknown as string[])).rejects.toThrow(RedisCacheConfigError);
      await expect(cache.getMany(['a', 1] as unknown as string[])).rejects.toThrow(
        /CacheService\.getMany: keys must be an array of strings/,
      );
    });
  });

  describe('@Cacheable({ batch })', () => {
    it("calls the method once with only the missing ids (caller's order, no duplicates) and answers in order", async () => {
      expect(await users.findUsers([2, 4])).toEqual([userOf(2), userOf(4)]);
      users.calls = [];
      const answer = await users.findUsers([5, 4, 3, 2, 5, 1]);
      expect(users.calls).toEqual([[5, 3, 1]]);
      expect(answer).toEqual([userOf(5), userOf(4), userOf(3), userOf(2), userOf(5), userOf(1)]);
      expect(answer[0]).toBe(answer[4]);
      // All hits now: the method is not called.
      users.calls = [];
      expect(await users.findUsers([1, 2, 3, 4, 5])).toEqual([1, 2, 3, 4, 5].map(userOf));
      expect(users.calls).toEqual([]);
      // Each id counts: 2 misses, then 2 hits + 4 misses, then 5 hits.
      expect(cache.stats().byName[FIND]).toMatchObject({ hits: 7, misses: 6, errors: 0 });
      expect(await users.findUsers([])).toEqual([]);
      expect(users.calls).toEqual([]);
    });

    it('reads its hits with one MGET per slot, and writes each loaded id as its own entry with a TTL', async () => {
      const ids = Array.from({ length: 30 }, (_, i) => i + 1);
      await users.findUsers(ids.filter((id) => id % 3 !== 0));
      users.calls = [];
      const sent = await commandsOf(() => users.findUsers(ids));
      expect(users.calls).toEqual([ids.filter((id) => id % 3 === 0)]);
      const keys = ids.map((id) => `user:${id}`);
      // (A tagged hit whose tags' epochs this process does not know yet has them read too: MGETs of
      // bookkeeping keys, `${ns}:@...`.)
      const entryReads = sent.filter(([command, first]) => command.toLowerCase() === 'mget' && !first.includes(':@'));
      expect(entryReads).toHaveLength(slotsOf(keys));
      expect(sent.filter(([command]) => command.toLowerCase() === 'get')).toEqual([]);
      for (const id of [3, 6, 30]) {
        const pttl = await redis.pttl(`${ns}:user:${id}`);
        expect(pttl).toBeGreaterThan(59_000);
        expect(pttl).toBeLessThanOrEqual(66_000); // ttl 60 s, jitter 0.1
      }
    });

    it('shares entries with a single @Cacheable of the same key template', async () => {
      await users.findUsers([1]);
      expect(await users.findUser(1)).toEqual(userOf(1));
      expect(users.singleLoads).toBe(0);
      await users.findUser(9);
      users.calls = [];
      expect(await users.findUsers([9, 1])).toEqual([userOf(9), userOf(1)]);
      expect(users.calls).toEqual([]);
    });

    it('negative-caches an id answered null (nullTtl), and with cacheNull: false does not', async () => {
      expect(await users.findUsers([404, 1])).toEqual([null, userOf(1)]);
      const pttl = await redis.pttl(`${ns}:user:404`);
      expect(pttl).toBeGreaterThan(4_000);
      expect(pttl).toBeLessThanOrEqual(5_500); // nullTtl 5 s
      users.calls = [];
      expect(await users.findUsers([404, 1])).toEqual([null, userOf(1)]);
      expect(users.calls).toEqual([]);

      expect(await users.profiles([{ id: 0 }, { id: 3 }], '!')).toEqual([null, 'profile 3!']);
      expect(await users.profiles([{ id: 0 }, { id: 3 }], '?')).toEqual([null, 'profile 3!']);
      expect(users.calls).toEqual([[0, 3], [0]]);
      expect(await redis.exists(`${ns}:profile:0`)).toBe(0);
    });

    it('tags each id by (itemResult, item): an invalidated tag reloads only its ids', async () => {
      await users.findUsers([1, 2, 3, 4, 404]);
      await cache.invalidateTags(['team:even', 'team:404']);
      users.calls = [];
      expect(await users.findUsers([1, 2, 3, 4, 404])).toEqual([userOf(1), userOf(2), userOf(3), userOf(4), null]);
      expect(users.calls).toEqual([[2, 4, 404]]);
    });

    it('concurrent overlapping batches load each id exactly once', async () => {
      const batches = Array.from({ length: 200 }, (_, b) =>
        Array.from({ length: 10 }, (_, i) => ((b * 7 + i * 3) % 50) + 1),
      );
      const answers = await Promise.all(batches.map((ids) => users.findUsers(ids)));
      answers.forEach((answer, b) => expect(answer).toEqual(batches[b].map(userOf)));
      const loaded = users.calls.flat().sort((a, b) => a - b);
      expect(loaded).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    });

    it("a method's error reaches its caller unchanged, stores nothing; a batch waiting on its ids loads them itself", async () => {
      users.failFor = 1;
      let open!: () => void;
      users.gate = new Promise((resolve) => (open = resolve));
      const first = users.findUsers([1, 2]);
      // Once the first batch's method runs, the second finds 2 being loaded and waits for it.
      await waitFor('the first batch to call the method', () => users.calls.length === 1);
      const second = users.findUsers([2, 3]);
      await waitFor('the second batch to call the method', () => users.calls.length === 2);
      open();
      await expect(first).rejects.toThrow('no 1');
      expect(await second).toEqual([userOf(2), userOf(3)]);
      expect(users.calls).toEqual([[1, 2], [3], [2]]);
      expect(await redis.exists(`${ns}:user:1`)).toBe(0);
      users.failFor = undefined;
      users.gate = undefined;
      users.calls = [];
      expect(await users.findUsers([1, 2, 3])).toEqual([1, 2, 3].map(userOf));
      expect(users.calls).toEqual([[1]]);
    });

    it('a result not aligned with the ids is returned as it is, nothing stored, counted and logged once', async () => {
      users.answer = (ids) => ids.slice(1).map(userOf);
      // Every id missed and none repeated: the method's result for exactly the caller's ids.
      expect(await users.findUsers([1, 2, 3])).toEqual([userOf(2), userOf(3)]);
      expect(users.calls).toEqual([[1, 2, 3]]);
      // With a hit (or a duplicate) the method saw fewer ids than the caller gave: it is called for the
      // caller's own ids, and that result is returned as it is.
      users.answer = undefined;
      await users.findUsers([9]);
      users.answer = (ids) => ({ rows: ids });
      users.calls = [];
      expect(await users.findUsers([9, 8, 8])).toEqual({ rows: [9, 8, 8] });
      expect(users.calls).toEqual([[8], [9, 8, 8]]);
      expect(await redis.exists(`${ns}:user:1`)).toBe(0);
      expect(await redis.exists(`${ns}:user:8`)).toBe(0);
      expect(cache.stats().byName[FIND].errors).toBe(2);
      const warnings = logs.lines.filter(({ message }) => message.includes('one result per id'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0].message).toContain('UsersService.findUsers @Cacheable');
    });

    it('passes the other arguments through, keys by a path of the id, bypasses on condition', async () => {
      expect(await users.profiles([{ id: 1 }, { id: 2 }], '.')).toEqual(['profile 1.', 'profile 2.']);
      expect(await redis.exists(`${ns}:profile:1`)).toBe(1);
      const many = Array.from({ length: 100 }, (_, i) => i);
      users.calls = [];
      expect(await users.plain(many)).toEqual(many.map((id) => id * 10));
      expect(await users.plain(many)).toEqual(many.map((id) => id * 10));
      expect(users.calls).toEqual([many, many]);
      expect(cache.stats().byName['UsersService.plain']).toMatchObject({ hits: 0, misses: 0, bypasses: 200 });
      expect(await users.plain([1, 2])).toEqual([10, 20]);
      expect(await users.plain([2, 3])).toEqual([20, 30]);
      expect(users.calls.slice(2)).toEqual([[1, 2], [3]]);
    });

    it('unless keeps an id out of the cache; an id that cannot name a key bypasses the cache for the call', async () => {
      expect(await users.plain([0, 1])).toEqual([0, 10]);
      expect(await users.plain([0, 1])).toEqual([0, 10]);
      expect(users.calls).toEqual([[0, 1], [0]]);
      const unkeyable = (() => 1) as unknown as number;
      users.calls = [];
      expect(await users.plain([1, unkeyable])).toEqual([10, NaN]);
      expect(users.calls).toEqual([[1, unkeyable]]);
      expect(logs.lines.some(({ message }) => message.includes('cannot name a call'))).toBe(true);
    });

    it('a first argument that is not an array bypasses the cache (logged once)', async () => {
      users.answer = () => 'as is';
      expect(await users.findUsers(7 as unknown as number[])).toBe('as is');
      expect(users.calls).toEqual([7]);
      expect(logs.lines.some(({ message }) => message.includes('must be the array of ids'))).toBe(true);
    });

    it('serves Observable methods', async () => {
      expect(await new Promise((resolve) => users.observed([1, 2]).subscribe(resolve))).toEqual([-1, -2]);
      expect(await new Promise((resolve) => users.observed([2, 3]).subscribe(resolve))).toEqual([-2, -3]);
      expect(users.calls).toEqual([[1, 2], [3]]);
    });
  });

  it(
    'Redis down: getMany answers every key undefined (one error), the method gets every id, nothing is thrown',
    async () => {
      const own = await startOwnRedis();
      const downLogs = new LogRecorder();
      const downApp = await createTestApp({
        providers: [UsersService],
        cache: { redis: own.connection, commandTimeout: 200 },
        logger: downLogs,
      });
      try {
        const service = downApp.get(UsersService);
        const downCache = downApp.get(CacheService);
        await downCache.set('a', 1);
        expect(await downCache.getMany(['a'])).toEqual([1]);
        await own.kill();
        const errors = downCache.stats().errors;
        expect(await downCache.getMany(['a', 'b', 'c'])).toEqual([undefined, undefined, undefined]);
        expect(downCache.stats().errors).toBe(errors + 1);
        expect(await service.findUsers([3, 1, 3, 2])).toEqual([userOf(3), userOf(1), userOf(3), userOf(2)]);
        expect(service.calls).toEqual([[3, 1, 2]]);
        expect(downCache.stats().byName[FIND]).toMatchObject({ hits: 0, misses: 0 });
      } finally {
        await downApp.close();
        await own.stop();
      }
    },
    OWN_REDIS_TEST_TIMEOUT_MS,
  );
});
