// Closing the app while calls are in flight (a deploy's SIGTERM under load): every call still gets the
// source's value, and the commands that fail because the module is closing its own connection are no
// outage: nothing is logged as one, counted as an error or announced on the events. A spurious
// "Redis cache unavailable" at every shutdown would teach a team to ignore the line that matters.
import 'reflect-metadata';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { CACHE_CHANNELS } from 'nestjs-redis-cache';
import { createFaultApp, range } from '../support/fault-helpers.js';
import { testRedisConnection } from '../support/redis-topology.js';
import { delay } from '../support/timing.js';

describe('closing the app while calls are in flight', () => {
  // 0: close in the tick the calls start (their first commands are still unsent); later: replies pending.
  it.each([0, 1, 3, 10])(
    'after %i ms of traffic: every call answered, no outage logged, counted or announced',
    async (ms) => {
      // Subscribed once the app is up: its bootstrap announces the connection 'up'. A closing
      // connection fails its commands at once, whatever the timeout; the fault apps' 100 ms would also
      // count a GET that a loaded CI machine merely stalled past it (CI once saw one) as an outage.
      const { app, source, cache, logs } = await createFaultApp(testRedisConnection(), {
        cache: { commandTimeout: 2_000 },
      });
      const announced: unknown[] = [];
      const listen = (message: unknown) => announced.push(message);
      subscribe(CACHE_CHANNELS.error, listen);
      subscribe(CACHE_CHANNELS.connection, listen);
      try {
        const reads = range(0, 300).map((i) => source.find(i % 50));
        const loads = range(0, 50).map((id) =>
          cache.getOrSet(`loaded:${id}`, () => delay(5).then(() => id), { ttl: 10 }),
        );
        const clearing = cache.clear('item:');
        const invalidating = cache.invalidateTags(['catalog']);
        await delay(ms);
        await app.close();

        expect((await Promise.all(reads)).map((item) => item.id)).toEqual(range(0, 300).map((i) => i % 50));
        expect(await Promise.all(loads)).toEqual(range(0, 50));
        await Promise.all([clearing, invalidating]);
        // Follow-ups the failures handed on (a lease given back, a replay) would run by now.
        await delay(200);
        expect(logs.outages()).toEqual([]);
        expect(cache.stats().errors).toBe(0);
        expect(announced).toEqual([]);
      } finally {
        unsubscribe(CACHE_CHANNELS.error, listen);
        unsubscribe(CACHE_CHANNELS.connection, listen);
      }
    },
  );
});
