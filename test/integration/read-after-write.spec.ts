import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheEvict, CachePut, CacheService } from 'nestjs-redis-cache';
import { createTestApp } from '../support/test-app.js';

/** A source whose reads take a while and can be held, so a write can land in the middle of one. */
@Injectable()
class ProfileStore {
  name = 'old';
  reads = 0;
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;

  holdReads(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }
  releaseReads(): void {
    this.openGate();
  }

  @Cacheable({ key: 'profile:{0}' })
  async find(id: number): Promise<string> {
    this.reads++;
    const seen = this.name; // the value this read observed, before any write that follows
    await this.gate;
    return `${id}:${seen}`;
  }

  @CachePut({ key: 'profile:{0}' })
  async rename(id: number, name: string): Promise<string> {
    this.name = name;
    return `${id}:${name}`;
  }

  @CacheEvict({ key: 'profile:{0}' })
  async touch(id: number, name: string): Promise<void> {
    this.name = name;
  }
}

describe('a read that began before a write in the same process', () => {
  let app: INestApplication;
  let store: ProfileStore;

  beforeEach(async () => {
    app = await createTestApp({ providers: [ProfileStore] });
    store = app.get(ProfileStore);
  });
  afterEach(async () => app.close());

  // After a put the late read is a hit (1 source read in all); after an eviction it loads (2).
  it.each([
    ['@CachePut', (s: ProfileStore) => s.rename(1, 'new'), 1],
    ['@CacheEvict', (s: ProfileStore) => s.touch(1, 'new'), 2],
  ])('does not overwrite what %s did, and later reads see the write', async (_label, write, sourceReads) => {
    store.holdReads();
    const early = store.find(1); // misses and reads 'old', then waits
    while (store.reads === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    await write(store);
    store.releaseReads();
    const late = await store.find(1); // began after the write resolved: must not join the old load
    expect(late).toBe('1:new');
    expect(await early).toBe('1:old'); // the early caller gets what it read
    expect(await store.find(1)).toBe('1:new'); // and the cache was not overwritten by it
    expect(store.reads).toBe(sourceReads); // the last call was a hit
    expect(await app.get(CacheService).get('profile:1')).toBe('1:new');
  });
});
