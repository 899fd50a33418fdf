// The Redis key names the cache writes, read back with SCAN on the namespace: default keys are
// `ClassName:methodName:` + a typed encoding of the arguments; long or unsafe parts are hashed (`#`).
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable, CacheService } from 'nestjs-redis-cache';
import { createTestApp, rawRedis, uniqueNamespace } from '../support/test-app.js';
import { SAFE_KEY, scanEntryKeys } from '../support/redis-keys.js';

const HASH = '#[A-Za-z0-9_-]{22}';

@Injectable()
class SearchService {
  runs = 0;
  @Cacheable()
  async none(): Promise<number> {
    this.runs++;
    return 0;
  }
  @Cacheable()
  async find(...args: unknown[]): Promise<number> {
    this.runs++;
    return args.length;
  }
  @Cacheable({ key: 'user:{0}' })
  async user(name: string): Promise<string> {
    this.runs++;
    return name;
  }
  @Cacheable({ key: (q: string, page: number) => `search:${q}:${page}` })
  async search(q: string, page: number): Promise<string> {
    this.runs++;
    return `${q}#${page}`;
  }
}

describe('Redis key names', () => {
  let app: INestApplication;
  let service: SearchService;
  let ns: string;
  const redis = rawRedis();
  /** The keys under the namespace, without the `${ns}:` prefix. */
  const keys = async () => (await scanEntryKeys(redis, `${ns}:*`)).map((key) => key.slice(ns.length + 1));

  beforeEach(async () => {
    ns = uniqueNamespace('keys');
    app = await createTestApp({ providers: [SearchService], cache: { namespace: ns } });
    service = app.get(SearchService);
  });
  afterEach(() => app.close());
  afterAll(() => redis.quit());

  it('default key: ClassName:methodName: followed by the arguments', async () => {
    await service.none();
    await service.find(42, 'x', true, null);
    expect(await keys()).toEqual(['SearchService:find:42:x:~true:~null', 'SearchService:none:']);
  });

  it('objects with the same entries in another order give the same key (and one run)', async () => {
    await service.find({ a: 1, b: 2 });
    await service.find({ b: 2, a: 1 });
    await service.find({ filters: { tags: ['x'], q: 'y' }, page: 1 });
    await service.find({ page: 1, filters: { q: 'y', tags: ['x'] } });
    expect(service.runs).toBe(2);
    const written = await keys();
    expect(written).toHaveLength(2);
    for (const key of written) expect(key).toMatch(new RegExp(`^SearchService:find:${HASH}$`));
  });

  it('different arguments give different keys', async () => {
    await service.find({ a: 1 });
    await service.find({ a: 2 });
    await service.find('a', 'b');
    await service.find('a:b');
    await service.find(['a', 'b']);
    expect(service.runs).toBe(5);
    expect(new Set(await keys()).size).toBe(5);
  });

  it('a part longer than 128 characters is hashed; 128 is kept', async () => {
    const long = 'x'.repeat(129);
    await service.find(long);
    await service.find('y'.repeat(128));
    const written = await keys();
    expect(written).toContain(`SearchService:find:${'y'.repeat(128)}`);
    expect(written.find((key) => key.includes('x'.repeat(20)))).toBeUndefined();
    expect(written.filter((key) => new RegExp(`^SearchService:find:${HASH}$`).test(key))).toHaveLength(1);
  });

  it.each([
    ['a space', 'hello world'],
    ['an @', 'ada@example.com'],
    ['unicode', 'naïve-ünïcödé-日本'],
    ['a glob *', 'user*'],
    ['a glob ?[]', 'a?[b]'],
    ['a newline', 'a\nb'],
    ['a colon', 'a:b'],
  ])('an argument with %s is hashed, in default and template keys', async (_, input) => {
    await service.find(input);
    await service.user(input);
    const written = await keys();
    expect(written.sort()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^SearchService:find:${HASH}$`)),
        expect.stringMatching(new RegExp(`^user:${HASH}$`)),
      ]),
    );
    expect(written).toHaveLength(2);
    for (const key of written) expect(`${ns}:${key}`).toMatch(SAFE_KEY);
    // ...and it is still a cache: the same input hits
    await service.find(input);
    await service.user(input);
    expect(service.runs).toBe(2);
  });

  it('template and function keys are used exactly', async () => {
    await service.user('ada');
    await service.search('redis', 2);
    expect(await keys()).toEqual(['search:redis:2', 'user:ada']);
  });

  it('an unsafe part of a function key is hashed segment by segment', async () => {
    await service.search('hello world', 3);
    expect(await keys()).toEqual([expect.stringMatching(new RegExp(`^search:${HASH}:3$`))]);
  });

  it('CacheService keys are logical keys under the namespace; unsafe ones are hashed too', async () => {
    const cache = app.get(CacheService);
    await cache.set('user:1', 1);
    await cache.set('user name:2', 2);
    const written = await keys();
    expect(written).toContain('user:1');
    expect(written).toContainEqual(expect.stringMatching(new RegExp(`^${HASH}:2$`)));
    expect(await cache.get('user name:2')).toBe(2);
  });
});
