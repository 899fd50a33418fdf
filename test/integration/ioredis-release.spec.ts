// The suite runs on ioredis 6 (the default projects) and on ioredis 5 (`integration-ioredis5`, which
// maps `ioredis` to the `ioredis5` package): this checks that each project really runs the release it
// claims to, and that on 6 the module's connections speak RESP3, its default.
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { CacheService } from 'nestjs-redis-cache';
import { createTestApp, rawRedis, testTopology } from '../support/test-app.js';

const expectedMajor = process.env.NODE_OPTIONS?.includes('ioredis5-hook') ? 5 : 6;

describe(`the ioredis release of this project (${expectedMajor})`, () => {
  let app: INestApplication;
  const redis = rawRedis();

  beforeAll(async () => {
    app = await createTestApp({});
  });
  afterAll(async () => {
    await app.close();
    await redis.quit();
  });

  it(`is ioredis ${expectedMajor}`, () => {
    // `protocol` is an option from ioredis 6 on (default 3); ioredis 5 has no such option.
    const client = new Redis({ lazyConnect: true });
    expect((client.options as { protocol?: number }).protocol).toBe(expectedMajor === 6 ? 3 : undefined);
    client.disconnect();
  });

  it(`the module's connections speak RESP${expectedMajor === 6 ? 3 : 2}`, async () => {
    const cache = app.get(CacheService);
    await cache.set('resp-probe', 1);
    expect(await cache.get('resp-probe')).toBe(1);
    const name = testTopology() === 'cluster' ? undefined : ((await cache.client.client('INFO')) as string);
    if (name !== undefined) expect(name).toMatch(new RegExp(`\\bresp=${expectedMajor === 6 ? 3 : 2}\\b`));
  });
});
