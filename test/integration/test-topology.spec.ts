// The suite runs twice, on one redis-server and on a Redis Cluster: this checks that each project
// really hands its specs the Redis it claims to, so a green cluster run means the cluster was used.
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { CacheService } from 'nestjs-redis-cache';
import { createTestApp, rawRedis, testTopology } from '../support/test-app.js';

describe(`the test Redis of this project (${testTopology()})`, () => {
  let app: INestApplication;
  const redis = rawRedis();

  beforeAll(async () => {
    app = await createTestApp({});
  });
  afterAll(async () => {
    await app.close();
    await redis.quit();
  });

  if (testTopology() === 'cluster') {
    it("createTestApp's cache and rawRedis() are Cluster clients", () => {
      expect(app.get(CacheService).client).toBeInstanceOf(Cluster);
      expect(redis).toBeInstanceOf(Cluster);
    });

    it('the cluster has 3 primaries serving all 16384 slots, each with a connected replica', async () => {
      const cluster = redis as unknown as Cluster;
      expect(await cluster.cluster('INFO')).toMatch(/cluster_state:ok\r?\n[\s\S]*cluster_slots_ok:16384/);
      // CLUSTER NODES: `<id> <address> <flags> <primary id> <ping> <pong> <epoch> <link> <slots...>`
      const nodes = ((await cluster.cluster('NODES')) as string)
        .trim()
        .split('\n')
        .map((line) => line.split(' '));
      const primaries = nodes.filter(([, , flags]) => flags.includes('master'));
      const replicas = nodes.filter(([, , flags]) => flags.includes('slave'));
      expect(primaries).toHaveLength(3);
      expect(new Set(replicas.map(([, , , primary]) => primary))).toEqual(new Set(primaries.map(([id]) => id)));
      for (const [, , , , , , , link] of nodes) expect(link).toBe('connected');
    });
  } else {
    it("createTestApp's cache and rawRedis() are clients of one server", () => {
      expect(app.get(CacheService).client).toBeInstanceOf(Redis);
      expect(app.get(CacheService).client).not.toBeInstanceOf(Cluster);
      expect(redis).toBeInstanceOf(Redis);
    });
  }
});
