// Batched operations go out as pipelines: a multi-key eviction is one write on the module's socket
// (one round trip), whatever the number of keys, and `clear` sends each SCAN batch's UNLINKs in one
// write. Counted on the real connection: ioredis writes a pipeline with a single `stream.write`,
// and a command sent on its own with one write per command.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { CacheEvict, CacheService } from 'nestjs-redis-cache';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { scanKeys } from './helpers.js';

const KEYS = 300;

@Injectable()
class CatalogService {
  @CacheEvict({ keys: (ids: number[]) => ids.map((id) => `item:${id}`) })
  async removeMany(ids: number[]): Promise<number> {
    return ids.length;
  }
}

describe('pipelining of batched operations', () => {
  const redis = rawRedis();
  let app: INestApplication;
  let cache: CacheService;
  let ns: string;

  beforeEach(async () => {
    ns = uniqueNamespace('pipe');
    app = await createTestApp({ providers: [CatalogService], cache: { namespace: ns } });
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  async function seed(prefix: string, count: number): Promise<string[]> {
    const keys = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.set(`${ns}:${key}`, 'x', 'PX', 60_000);
    await pipeline.exec();
    return keys;
  }

  /** Socket writes of the module's connection while `work` runs. */
  async function socketWrites<T>(work: () => Promise<T>): Promise<{ result: T; writes: number }> {
    const stream = (cache.client as Redis).stream;
    const write = stream.write;
    let writes = 0;
    stream.write = function (this: typeof stream, ...args: Parameters<typeof write>) {
      writes++;
      return write.apply(this, args);
    } as typeof write;
    try {
      return { result: await work(), writes };
    } finally {
      stream.write = write;
    }
  }

  it(`CacheService.del of ${KEYS} keys is one pipeline: one write, every key gone`, async () => {
    const keys = await seed('del:', KEYS);
    const { result, writes } = await socketWrites(() => cache.del(...keys));
    expect(result).toBe(KEYS);
    expect(writes).toBe(1);
    expect(await scanKeys(redis, `${ns}:del:*`)).toEqual([]);
  });

  it(`@CacheEvict with keys of ${KEYS} ids is one pipeline`, async () => {
    await seed('item:', KEYS);
    const ids = Array.from({ length: KEYS }, (_, i) => i);
    const { result, writes } = await socketWrites(() => app.get(CatalogService).removeMany(ids));
    expect(result).toBe(KEYS);
    expect(writes).toBe(1);
    expect(await scanKeys(redis, `${ns}:item:*`)).toEqual([]);
  });

  it('clear sends each SCAN batch of UNLINKs in one write', async () => {
    await seed('bulk:', 1_200);
    // Count the SCAN steps (the shared test database may hold other suites' keys, so their number varies).
    const client = cache.client as Redis;
    const scan = client.scan;
    let scans = 0;
    client.scan = function (this: Redis, ...args: unknown[]) {
      scans++;
      return (scan as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof scan;
    let measured;
    try {
      measured = await socketWrites(() => cache.clear('bulk:'));
    } finally {
      client.scan = scan;
    }
    expect(measured.result).toBe(1_200);
    expect(await scanKeys(redis, `${ns}:bulk:*`)).toEqual([]);
    // One write per SCAN step and at most one per batch it found: without pipelining there would
    // be at least 1,200 writes, one per UNLINK.
    expect(scans).toBeGreaterThanOrEqual(1);
    expect(measured.writes).toBeGreaterThan(scans);
    expect(measured.writes).toBeLessThanOrEqual(2 * scans);
  });
});
