// Hostile input and lost state, item 5: applications that share a Redis server but not their keys
// (another database, another keyPrefix) never act on each other's messages, and a message that no
// instance would send (garbage, an epoch Redis's clock cannot have reached) is dropped and counted.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { CacheEvict, Cacheable, CacheService, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { waitFor } from '../../support/load-helpers.js';
import {
  createTestApp,
  newTestClient,
  rawRedis,
  standaloneOnly,
  testRedisUrl,
  uniqueNamespace,
} from '../../support/test-app.js';
import { bookkeeping, publishAnnouncement } from '../../support/redis-keys.js';

@Injectable()
class Catalog {
  loads = 0;
  label = 'app';

  @Cacheable({ key: 'post:{0}', ttl: '1h' })
  async post(id: number): Promise<string> {
    this.loads++;
    return `post ${id} of ${this.label}`;
  }

  @CacheEvict({ key: 'post:{0}' })
  async remove(id: number): Promise<number> {
    return id;
  }
}

const NAME = 'Catalog.post';
const L1 = { max: 100, ttl: '1m' } as const;

describe('apps sharing a server stay apart', () => {
  const apps: INestApplication[] = [];
  let ns: string;

  async function start(label: string, cache: RedisCacheModuleOptions) {
    const app = await createTestApp({ providers: [Catalog], cache: { namespace: ns, l1: L1, ...cache } });
    apps.push(app);
    const catalog = app.get(Catalog);
    catalog.label = label;
    return { app, catalog, cache: app.get(CacheService) };
  }

  /** Reads posts 1..3 until each is an L1 hit (the tier serves a second after it starts). */
  async function warm({ catalog, cache }: Awaited<ReturnType<typeof start>>): Promise<void> {
    for (const id of [1, 2, 3]) await catalog.post(id);
    await waitFor(
      'the in-process tier to serve',
      async () => {
        const before = cache.stats().byName[NAME]?.l1Hits ?? 0;
        for (const id of [1, 2, 3]) await catalog.post(id);
        return (cache.stats().byName[NAME]?.l1Hits ?? 0) - before === 3;
      },
      5_000,
      50,
    );
  }

  beforeEach(() => {
    ns = uniqueNamespace('shared');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  /** The two apps' clearing, evicting and loading leave the other's entries served and nothing rejected. */
  async function expectApart(
    one: Awaited<ReturnType<typeof start>>,
    other: Awaited<ReturnType<typeof start>>,
  ): Promise<void> {
    await warm(one);
    await warm(other);
    const otherLoads = other.catalog.loads;
    await one.cache.clear(); // allEntries
    await one.catalog.remove(2); // an eviction, announced to in-process tiers
    await one.cache.set('post:3', 'overwritten by one');
    await one.catalog.post(1); // a load (its lease's release is published)
    for (const id of [1, 2, 3]) expect(await other.catalog.post(id)).toBe(`post ${id} of other`);
    expect(other.catalog.loads).toBe(otherLoads);
    expect(other.cache.stats().rejectedMessages).toBe(0);
    expect(one.cache.stats().rejectedMessages).toBe(0);
  }

  standaloneOnly('database numbers exist on one server only')(
    "same namespace on DB 0 and DB 1: one's allEntries, evictions, writes and lease releases do not touch the other",
    async () => {
      const url = new URL(testRedisUrl());
      const inDb = (db: number) => Object.assign(new URL(url.href), { pathname: `/${db}` }).href;
      const one = await start('one', { redis: inDb(0) });
      const other = await start('other', { redis: inDb(1) });
      // The channels differ: pub/sub ignores databases, so the database is in their names.
      expect(bookkeeping(ns, { keyPrefix: '', db: 0 }).l1Channel).not.toBe(
        bookkeeping(ns, { keyPrefix: '', db: 1 }).l1Channel,
      );
      await expectApart(one, other);
    },
  );

  it("same namespace, another keyPrefix: one's allEntries, evictions, writes and lease releases do not touch the other", async () => {
    const one = await start('one', { redis: newTestClient({ keyPrefix: 'tenant-a:' }) });
    const other = await start('other', { redis: newTestClient({ keyPrefix: 'tenant-b:' }) });
    try {
      await expectApart(one, other);
    } finally {
      for (const { cache } of [one, other]) cache.client.disconnect();
    }
  });

  it('garbage and implausible epochs published on its channels change nothing, and are counted', async () => {
    const app = await start('app', {});
    await warm(app);
    const keys = bookkeeping(ns);
    const publisher: Redis = rawRedis();
    const hostile = [
      [keys.prefixChannel, 'garbage'],
      [keys.prefixChannel, ''],
      [keys.prefixChannel, '1e300 post:'],
      [keys.prefixChannel, `${Number.MAX_SAFE_INTEGER} `],
      [keys.prefixChannel, '-5 post:'],
      [keys.prefixChannel, '17 \u0000'],
      [keys.l1Channel, 'garbage'],
      [keys.l1Channel, 'AAAAAAAA t 1e300 posts'],
      [keys.l1Channel, `AAAAAAAA k other-namespace:post:1`],
      [keys.l1Channel, `AAAAAAAA k ${keys.epoch}`],
      [keys.l1Channel, 'AAAAAAAA r other-namespace:'],
      [keys.l1Channel, 'AAAAAAAA x whatever'],
      [keys.leaseChannel, 'other-namespace:post:1'],
      [keys.leaseChannel, keys.prefixes],
    ] as const;
    try {
      for (const [channel, message] of hostile) {
        // Cleared prefixes go where an instance announces them (by SPUBLISH on a Cluster).
        if (channel === keys.prefixChannel) await publishAnnouncement(publisher, keys, 'prefixChannel', message);
        else await publisher.publish(channel, message);
      }
      await waitFor('the messages to arrive', () => app.cache.stats().rejectedMessages === hostile.length, 2_000);
    } finally {
      await publisher.quit();
    }
    const loads = app.catalog.loads;
    const l1Hits = app.cache.stats().byName[NAME].l1Hits;
    for (const id of [1, 2, 3]) expect(await app.catalog.post(id)).toBe(`post ${id} of app`);
    expect(app.catalog.loads).toBe(loads); // nothing cleared, nothing dropped
    expect(app.cache.stats().byName[NAME].l1Hits).toBe(l1Hits + 3); // the in-process tier still serves
    expect(app.cache.stats().rejectedMessages).toBe(hostile.length);
  });
});
