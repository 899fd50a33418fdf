// Hostile input and lost state, items 6, 7 and 9: an argument that cannot name a call bypasses the
// cache (warned once, never a shared key, never an error); nothing the cache does after the method
// ran can fail the caller; what a payload can make the decoder build is bounded; shared values can
// be frozen.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Packr } from 'msgpackr';
import { Cacheable, CacheEvict, CachePut, CacheService, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { encodeEntry } from '../../../lib/core/cache-entry.js';
import { createDefaultCodec } from '../../../lib/serialization/cache-codec.js';
import { PAYLOAD_FORMAT_VERSION, PAYLOAD_MAGIC } from '../../../lib/serialization/payload-header.js';
import { eventually, LogRecorder } from '../../support/fault-helpers.js';
import { createTestApp, rawRedis, uniqueNamespace } from '../../support/test-app.js';

@Injectable()
class Reports {
  runs = 0;

  @Cacheable({ key: 'at:{0}' })
  async at(when: Date): Promise<string> {
    this.runs++;
    return `report at ${String(when)}`;
  }

  @Cacheable()
  async matching(filter: object): Promise<number> {
    this.runs++;
    return Object.keys(filter).length;
  }

  @Cacheable({
    key: 'tagged:{0}',
    tags: (result: unknown, id: number) => (id === 1 ? [''] : Array.from({ length: 65 }, (_, i) => `t${i}`)),
  })
  async badTags(id: number): Promise<number> {
    this.runs++;
    return id;
  }

  @Cacheable({
    key: () => {
      throw new Error('the key function broke');
    },
  })
  async brokenKey(id: number): Promise<number> {
    this.runs++;
    return id;
  }

  @Cacheable({ key: (id: number) => (id > 0 ? undefined : 'zero') as unknown as string })
  async noKey(id: number): Promise<number> {
    this.runs++;
    return id;
  }

  @CachePut({
    key: {
      fromResult: () => {
        throw new Error('fromResult broke');
      },
    },
  })
  async putBroken(id: number): Promise<number> {
    this.runs++;
    return id;
  }

  @CacheEvict({
    keys: () => {
      throw new Error('keys broke');
    },
  })
  async evictBroken(id: number): Promise<number> {
    this.runs++;
    return id;
  }

  @Cacheable({ key: 'unencodable:{0}' })
  async unencodable(id: number): Promise<{ id: number; callback: () => number }> {
    this.runs++;
    return { id, callback: () => id };
  }

  @Cacheable({ key: 'shared:{0}' })
  async shared(id: number): Promise<{ id: number; tags: string[] }> {
    this.runs++;
    return { id, tags: ['a'] };
  }
}

describe('calls fail open on what the cache cannot do', () => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];
  let ns: string;

  async function start(cache: RedisCacheModuleOptions = {}) {
    const logs = new LogRecorder();
    const app = await createTestApp({ providers: [Reports], cache: { namespace: ns, ...cache }, logger: logs });
    apps.push(app);
    return { reports: app.get(Reports), cache: app.get(CacheService), logs };
  }

  beforeEach(() => {
    ns = uniqueNamespace('open');
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => redis.quit());

  it('an Invalid Date argument bypasses the cache (no throw), warned once naming the method and argument', async () => {
    const { reports, cache, logs } = await start();
    const invalid = new Date('not a date');
    expect(await reports.at(invalid)).toBe('report at Invalid Date');
    expect(await reports.at(invalid)).toBe('report at Invalid Date');
    expect(reports.runs).toBe(2); // never cached: every call runs
    expect(cache.stats().byName['Reports.at']).toMatchObject({ bypasses: 2, hits: 0, errors: 0 });
    const warnings = logs.cacheLines('warn').filter((line) => line.includes('Reports.at'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/Reports\.at @Cacheable: \{0\} is an Invalid Date, which cannot name a call/);
    // A valid date is cached as usual (the first write may be skipped on a loaded machine: a
    // command past commandTimeout).
    await reports.at(new Date(0));
    await eventually('a valid date to be a hit', async () => {
      await reports.at(new Date(0));
      return (cache.stats().byName['Reports.at']?.hits ?? 0) > 0;
    });
  });

  it('an argument with shared references bypasses the cache, never sharing a key', async () => {
    const { reports, cache, logs } = await start();
    const part = { a: 1 };
    const first = { x: part, y: part };
    const second = { x: { b: 2 }, y: { b: 2 } };
    await reports.matching(first);
    await reports.matching(first);
    expect(reports.runs).toBe(2);
    await reports.matching(second);
    await reports.matching(second);
    expect(reports.runs).toBe(3); // a plain value is cached
    expect(cache.stats().byName['Reports.matching'].bypasses).toBe(2);
    expect(logs.cacheLines('warn').filter((line) => /argument 0 is a value referenced twice/.test(line))).toHaveLength(
      1,
    );
  });

  it.each([
    ['an empty tag', 1],
    ['too many tags', 2],
  ])('a tags function returning %s: the value is returned, not stored, counted and logged once', async (_label, id) => {
    const { reports, cache, logs } = await start();
    expect(await reports.badTags(id)).toBe(id);
    expect(await reports.badTags(id)).toBe(id);
    expect(reports.runs).toBe(2);
    expect(await redis.exists(`${ns}:tagged:${id}`)).toBe(0);
    expect(cache.stats().byName['Reports.badTags'].errors).toBe(2);
    expect(logs.cacheLines('warn').filter((line) => line.includes('Reports.badTags'))).toHaveLength(1);
  });

  it('a key function that throws, or returns no key: the method answers, counted and logged once', async () => {
    const { reports, cache, logs } = await start();
    expect(await reports.brokenKey(1)).toBe(1);
    expect(await reports.brokenKey(1)).toBe(1);
    expect(await reports.noKey(1)).toBe(1);
    expect(await reports.noKey(0)).toBe(0);
    expect(await reports.noKey(0)).toBe(0); // 'zero' is a key: cached
    expect(reports.runs).toBe(4);
    expect(cache.stats().byName['Reports.brokenKey']).toMatchObject({ errors: 2, failedCalls: 2 });
    expect(cache.stats().byName['Reports.noKey']).toMatchObject({ errors: 1, failedCalls: 1, hits: 1 });
    expect(logs.cacheLines('warn').filter((line) => line.includes('Reports.brokenKey'))).toHaveLength(1);
    expect(logs.cacheLines('warn').filter((line) => line.includes('Reports.noKey'))).toHaveLength(1);
  });

  it('a put or eviction whose key cannot be built: the method answers, counted and logged once', async () => {
    const { reports, cache, logs } = await start();
    expect(await reports.putBroken(1)).toBe(1);
    expect(await reports.putBroken(2)).toBe(2);
    expect(await reports.evictBroken(3)).toBe(3);
    expect(cache.stats().byName['Reports.putBroken']).toMatchObject({ errors: 2, failedCalls: 2 });
    expect(cache.stats().byName['Reports.evictBroken']).toMatchObject({ errors: 1, failedCalls: 1 });
    expect(logs.cacheLines('warn').filter((line) => line.includes('Reports.putBroken'))).toHaveLength(1);
    expect(logs.cacheLines('warn').filter((line) => line.includes('Reports.evictBroken'))).toHaveLength(1);
  });

  it('an unencodable result is returned, not stored, counted and logged once', async () => {
    const { reports, cache, logs } = await start();
    const first = await reports.unencodable(1);
    expect(first.callback()).toBe(1);
    await reports.unencodable(1);
    expect(reports.runs).toBe(2);
    expect(await redis.exists(`${ns}:unencodable:1`)).toBe(0);
    expect(cache.stats().byName['Reports.unencodable'].errors).toBe(2);
    expect(logs.cacheLines('warn').filter((line) => line.includes('Reports.unencodable'))).toHaveLength(1);
  });

  it('a payload with msgpack structured-clone references is not decoded into a cyclic value: a miss', async () => {
    const { reports, cache } = await start();
    // Someone with write access to Redis writes an entry whose payload uses msgpackr's reference
    // extension (a cycle here; shared references could make an exponentially large value).
    const cyclic: Record<string, unknown> = { id: 5 };
    cyclic.self = cyclic;
    const body = new Packr({ structuredClone: true, moreTypes: true }).pack(cyclic);
    const payload = Buffer.concat([Buffer.from([PAYLOAD_MAGIC, PAYLOAD_FORMAT_VERSION]), body]);
    const entry = encodeEntry(createDefaultCodec(), 0, Date.now() + 60_000, 1);
    const hostile = Buffer.concat([entry.subarray(0, entry.length - createDefaultCodec().encode(0).length), payload]);
    await redis.set(`${ns}:shared:5`, hostile, 'PX', 60_000);
    expect(await reports.shared(5)).toEqual({ id: 5, tags: ['a'] }); // from the source
    expect(reports.runs).toBe(1);
    expect(cache.stats().byName['Reports.shared'].errors).toBe(1); // an undecodable payload
  });

  it('freezeShared: one value handed to several callers (joiners, L1 hits) cannot be changed by one of them', async () => {
    const { reports } = await start({ freezeShared: true, l1: { max: 10, ttl: '1m' } });
    const [a, b] = await Promise.all([reports.shared(1), reports.shared(1)]);
    expect(a).toBe(b); // one load, one object
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.tags)).toBe(true);
    expect(() => a.tags.push('b')).toThrow(TypeError);
    const hit = await reports.shared(1);
    expect(Object.isFrozen(hit)).toBe(true);
    expect(hit).toEqual({ id: 1, tags: ['a'] });
  });

  it('without freezeShared, values stay mutable (the default)', async () => {
    const { reports } = await start();
    const value = await reports.shared(2);
    expect(Object.isFrozen(value)).toBe(false);
  });
});
