import 'reflect-metadata';
import { createFaultApp, FIND, outcomes, type FaultApp } from '../support/fault-helpers.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis, type OwnRedis } from '../support/own-redis.js';

// A Redis of this file's own (a redis-server, or a cluster in the cluster project), away from the
// load of the suites running beside it. A wrong type is no outage, and this file asserts none: its
// commandTimeout is generous (1 s, not the fault tests' 100 ms), so a slow reply on a loaded
// machine does not turn into one.
describe('a key of the wrong type (someone else wrote a hash there)', () => {
  let redis: OwnRedis;
  let fault: FaultApp;

  beforeAll(async () => {
    redis = await startOwnRedis();
    fault = await createFaultApp(redis.connection, { cache: { commandTimeout: '1s' } });
  }, OWN_REDIS_TEST_TIMEOUT_MS);
  afterAll(async () => {
    await fault.app.close();
    await redis.stop();
  });

  it("serves the source, leaves the key alone (it is not the cache's to overwrite), and is no outage: other keys stay cached", async () => {
    const admin = redis.client();
    try {
      await fault.source.find(2); // a healthy entry
      await admin.hset(fault.itemKey(1), 'field', 'value');

      const [wrong, healthy] = await Promise.all([fault.source.find(1), fault.source.find(2)]);
      expect(wrong).toMatchObject({ id: 1 });
      expect(healthy).toMatchObject({ id: 2, load: 1 }); // still served from the cache
      // Every script refuses to overwrite a key that is not an entry of this package.
      expect(await admin.type(fault.itemKey(1))).toBe('hash');
      expect(await admin.hget(fault.itemKey(1), 'field')).toBe('value');
      const loads = fault.source.loads;
      expect(await fault.source.find(1)).toMatchObject({ id: 1 });
      expect(fault.source.loads).toBe(loads + 1); // from the source again: nothing is stored there

      expect(outcomes(fault.cache, FIND)).toMatchObject({ failed: 2, hits: 1, misses: 1 });
      expect(fault.cache.stats().errors).toBe(2); // one per call: the read's error reply
      const outageLines = fault.logs.lines.filter((line) => /unavailable|recovered/.test(line.message));
      expect(outageLines).toEqual([]);
    } finally {
      await admin.quit();
    }
  });
});
