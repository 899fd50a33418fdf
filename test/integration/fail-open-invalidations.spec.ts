import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { CacheEvict, CachePut } from 'nestjs-redis-cache';
import { startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';
import { adminClient, createFaultApp, eventually, type FaultApp } from '../support/fault-helpers.js';
import { holdsValue } from '../support/redis-keys.js';

// An eviction or a write that Redis never received during an outage must not leave the old value
// to be served for its whole TTL: the cache remembers those keys and deletes them when Redis
// answers again ("fail open, lose nothing").

/** Writes to the keys CatalogSource.find reads (`item:{id}`). */
@Injectable()
class CatalogWriter {
  @CacheEvict({ key: 'item:{0}' })
  async remove(_id: number): Promise<void> {}

  @CachePut({ key: 'item:{0}' })
  async replace(id: number): Promise<{ id: number; load: number }> {
    return { id, load: -1 };
  }
}

const PAUSE_MS = 1_000;

describe('invalidations held back by an outage are replayed when Redis recovers', () => {
  let server: LocalRedisServer;
  let fault: FaultApp;
  let admin: Redis;

  beforeAll(async () => {
    server = await startLocalRedis();
    fault = await createFaultApp(server.url, { providers: [CatalogWriter] });
    admin = adminClient(server.url);
  });
  afterAll(async () => {
    await fault.app.close();
    admin.disconnect();
    await server.stop();
  });

  it.each([
    ['an eviction', (writer: CatalogWriter, id: number) => writer.remove(id)],
    ['a write-through', (writer: CatalogWriter, id: number) => writer.replace(id).then(() => undefined)],
  ])('%s that never reached Redis: the old value is deleted once it answers', async (_, write) => {
    const { source } = fault;
    const writer = fault.app.get(CatalogWriter);
    const id = Math.floor(Math.random() * 1e9);
    let first = await source.find(id);
    // Cached (on a loaded machine a first write may pass the fault app's 100 ms commandTimeout: it is
    // then skipped, and the next miss writes again).
    await eventually('the value is cached', async () => {
      const again = await source.find(id);
      if (again.load === first.load) return true;
      first = again;
      return false;
    });

    const pausedAt = Date.now();
    expect(await admin.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL')).toBe('OK');
    await source.find(id + 1); // its read times out: the outage starts
    // While the next read probes Redis, other commands are not sent at all: the write below is lost.
    const probe = source.find(id + 2);
    await write(writer, id);
    expect(fault.cache.status().pendingInvalidations).toBe(1);
    await probe;

    await new Promise((resolve) => setTimeout(resolve, pausedAt + PAUSE_MS + 50 - Date.now()));
    expect(await admin.exists(fault.itemKey(id))).toBe(1); // the old value survived the outage in Redis
    // The first command that succeeds ends the outage, and the replay deletes the key.
    await eventually('the held-back invalidation is replayed', async () => {
      await source.find(id + 3);
      return fault.cache.status().pendingInvalidations === 0 && !(await holdsValue(admin, fault.itemKey(id)));
    });
    const after = await source.find(id);
    expect(after.load).toBeGreaterThan(first.load); // a miss: the source answered again
  });
});
