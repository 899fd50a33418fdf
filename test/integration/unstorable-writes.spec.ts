// A write whose value cannot be stored (a cycle, a function) must not leave the old value behind it:
// the source changed, so the key is deleted as an eviction would delete it, and a load in flight
// elsewhere (whose lease that deletion revokes) does not land an older value afterwards.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CachePut, CacheService } from 'nestjs-redis-cache';
import { waitFor } from '../support/load-helpers.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { holdsValue } from '../support/redis-keys.js';
import { delay } from '../support/timing.js';

interface Profile {
  id: number;
  name: string;
  self?: unknown;
}

@Injectable()
class ProfileService {
  /** The "database". */
  readonly rows = new Map<number, string>([[1, 'Ada']]);
  loadDelayMs = 0;
  loads = 0;

  @Cacheable({ key: 'profile:{0}', ttl: 60 })
  async find(id: number): Promise<Profile> {
    this.loads++;
    const name = this.rows.get(id)!;
    await delay(this.loadDelayMs);
    return { id, name };
  }

  /** Returns an ORM-like entity with a back-reference: it cannot be encoded. */
  @CachePut({ key: 'profile:{0}', ttl: 60 })
  async rename(id: number, name: string): Promise<Profile> {
    this.rows.set(id, name);
    const profile: Profile = { id, name };
    profile.self = profile;
    return profile;
  }
}

describe('a write that cannot be stored deletes the old value', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let ns: string;

  async function start() {
    const app = await createTestApp({ providers: [ProfileService], cache: { namespace: ns } });
    apps.push(app);
    return { profiles: app.get(ProfileService), cache: app.get(CacheService) };
  }

  beforeEach(() => {
    ns = uniqueNamespace('unstorable');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('CacheService.set of a function over a cached value: the key is gone, the failure counted', async () => {
    const { cache } = await start();
    await cache.set('config', { mode: 'old' });
    await cache.set('config', { mode: 'new', apply: () => 'new' });
    expect(await cache.get('config')).toBeUndefined();
    expect(await holdsValue(redis, `${ns}:config`)).toBe(false);
    expect(cache.stats().errors).toBe(1);
  });

  it('@CachePut of a cyclic entity: the caller gets it, and the next read loads the new row', async () => {
    const { profiles } = await start();
    expect(await profiles.find(1)).toEqual({ id: 1, name: 'Ada' });
    const renamed = await profiles.rename(1, 'Ada Lovelace');
    expect(renamed.self).toBe(renamed);
    expect(await holdsValue(redis, `${ns}:profile:1`)).toBe(false);
    expect(await profiles.find(1)).toEqual({ id: 1, name: 'Ada Lovelace' });
    expect(profiles.loads).toBe(2);
  });

  it('a load in flight in another app that read the old row does not land after the failed write', async () => {
    const reader = await start();
    const writer = await start();
    reader.profiles.loadDelayMs = 200;
    const loading = reader.profiles.find(1); // reads 'Ada', then waits
    await waitFor('the load to start', () => reader.profiles.loads === 1);
    writer.profiles.rows.set(1, 'Ada Lovelace'); // the shared database, as the writer sees it
    reader.profiles.rows.set(1, 'Ada Lovelace');
    await writer.profiles.rename(1, 'Ada Lovelace');
    expect(await loading).toEqual({ id: 1, name: 'Ada' }); // its caller began before the write
    expect(await holdsValue(redis, `${ns}:profile:1`)).toBe(false); // but the old row was not stored
    expect(await writer.profiles.find(1)).toEqual({ id: 1, name: 'Ada Lovelace' });
  });
});
