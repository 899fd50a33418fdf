// @Cacheable as CONTRACT.md and the README state it, on whichever store the project runs (contract-app.ts).
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Cacheable } from 'nestjs-redis-cache';
import { createContractApp, delay, eventually, type ContractApp } from './contract-app.js';

interface User {
  id: number;
  load: number;
}

@Injectable()
class UsersService {
  loads = 0;
  failNext = false;
  missing = new Set<number>();

  @Cacheable({ key: 'user:{0}', ttl: 1 })
  async find(id: number): Promise<User | null> {
    this.loads++;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('the database is down');
    }
    return this.missing.has(id) ? null : { id, load: this.loads };
  }

  @Cacheable({ key: 'profile:{0}', ttl: 'short' })
  async shortProfile(id: number): Promise<User> {
    this.loads++;
    return { id, load: this.loads };
  }

  @Cacheable({ key: 'feed:{0}', ttl: 'long' })
  async longProfile(id: number): Promise<User> {
    this.loads++;
    return { id, load: this.loads };
  }

  @Cacheable({ key: 'absent:{0}', cacheNull: false })
  async notNegative(id: number): Promise<User | null> {
    this.loads++;
    return this.missing.has(id) ? null : { id, load: this.loads };
  }

  @Cacheable({ key: 'slow:{0}' })
  async slow(id: number): Promise<User> {
    this.loads++;
    const load = this.loads;
    await delay(50);
    return { id, load };
  }

  @Cacheable({ key: 'trending', ttl: 1, staleWhileRevalidate: 30 })
  async trending(): Promise<number> {
    this.loads++;
    return this.loads;
  }

  @Cacheable({ key: 'value:{0}' })
  async value(kind: string): Promise<unknown> {
    this.loads++;
    return values[kind];
  }
}

const values: Record<string, unknown> = {
  date: new Date('2026-01-02T03:04:05.678Z'),
  map: new Map<string, unknown>([
    ['a', 1],
    ['b', { nested: [1, 2, 3] }],
  ]),
  set: new Set(['x', 'y']),
  bigint: 12345678901234567890n,
  buffer: Buffer.from([0, 1, 2, 250, 255]),
  bytes: new Uint8Array([9, 8, 7]),
  nested: { at: new Date(0), tags: new Set([1]), counts: new Map([[1, 2n]]), list: [{ a: 'b' }], none: null },
};

describe('@Cacheable', () => {
  let contract: ContractApp;
  let users: UsersService;
  const stats = (name: string) => contract.cache.stats().byName[name];

  beforeEach(async () => {
    contract = await createContractApp({
      providers: [UsersService],
      cache: { ttl: 60, nullTtl: 1, ttlProfiles: { short: 1, long: 60 } },
    });
    users = contract.get(UsersService);
  });
  afterEach(() => contract.close());

  it('runs the method on a miss and serves the value until its TTL, then loads again', async () => {
    expect(await users.find(1)).toEqual({ id: 1, load: 1 });
    expect(await users.find(1)).toEqual({ id: 1, load: 1 });
    expect(await users.find(2)).toEqual({ id: 2, load: 2 });
    expect(stats('UsersService.find')).toMatchObject({ hits: 1, misses: 2 });
    await contract.wait(1_100);
    expect(await users.find(1)).toEqual({ id: 1, load: 3 });
    expect(stats('UsersService.find')).toMatchObject({ hits: 1, misses: 3 });
  });

  it('keeps each TTL profile its own time', async () => {
    await users.shortProfile(1);
    await users.longProfile(1);
    await contract.wait(1_100);
    expect(await users.shortProfile(1)).toEqual({ id: 1, load: 3 });
    expect(await users.longProfile(1)).toEqual({ id: 1, load: 2 });
    expect(stats('UsersService.longProfile')).toMatchObject({ hits: 1, misses: 1 });
  });

  it('caches null for nullTtl (negative caching), and not at all with cacheNull: false', async () => {
    users.missing.add(7);
    expect(await users.find(7)).toBeNull();
    expect(await users.find(7)).toBeNull();
    expect(users.loads).toBe(1);
    expect(await users.notNegative(7)).toBeNull();
    expect(await users.notNegative(7)).toBeNull();
    expect(users.loads).toBe(3);
    users.missing.delete(7);
    await contract.wait(1_100);
    expect(await users.find(7)).toEqual({ id: 7, load: 4 });
  });

  it('never caches a method that throws: its error reaches the caller, the next call runs it again', async () => {
    users.failNext = true;
    await expect(users.find(3)).rejects.toThrow('the database is down');
    expect(await users.find(3)).toEqual({ id: 3, load: 2 });
    expect(await users.find(3)).toEqual({ id: 3, load: 2 });
  });

  it('runs the method once for 100 concurrent cold calls (single-flight)', async () => {
    const results = await Promise.all(Array.from({ length: 100 }, () => users.slow(5)));
    expect(users.loads).toBe(1);
    expect(new Set(results.map((result) => result.load))).toEqual(new Set([1]));
    expect(await users.slow(5)).toEqual({ id: 5, load: 1 });
  });

  it('serves a stale value at once within staleWhileRevalidate while one refresh runs in the background', async () => {
    expect(await users.trending()).toBe(1);
    await contract.wait(1_100);
    expect(await Promise.all([users.trending(), users.trending(), users.trending()])).toEqual([1, 1, 1]);
    expect(stats('UsersService.trending')).toMatchObject({ misses: 1, stale: 3 });
    await eventually(
      'the background refresh stored its value',
      async () => (await contract.cache.get('trending')) === 2,
    );
    expect(await users.trending()).toBe(2);
    expect(users.loads).toBe(2);
    expect(stats('UsersService.trending')).toMatchObject({ hits: 1, misses: 1, stale: 3, refreshes: 1 });
  });

  it.each(Object.keys(values))('gives back a %s deep-equal to what the method returned', async (kind) => {
    const loaded = await users.value(kind);
    const cached = await users.value(kind);
    expect(users.loads).toBe(1);
    expect(cached).toEqual(values[kind]);
    expect(loaded).toEqual(values[kind]);
    if (kind === 'buffer') expect(Buffer.isBuffer(cached)).toBe(true);
    expect(stats('UsersService.value')).toMatchObject({ hits: 1, misses: 1 });
  });
});
