import { jest } from '@jest/globals';
import { BookkeepingKeys } from '../../lib/core/bookkeeping-keys.js';
import { PrefixGenerations } from '../../lib/core/invalidation/prefix-generations.js';
import { RedisClock } from '../../lib/core/redis-clock.js';
import type { CacheStore } from '../../lib/store/cache-store.js';

// The catch-up read a new subscription makes before the prefix markers in memory are trusted, on a
// stand-in store whose marker read fails a given number of times. On Redis, with a read that times
// out: test/integration/hostile-input/failed-catch-up.spec.ts.

/** A store whose marker read fails `failures` times, then answers an empty set; counts the reads. */
function markerStore(failures: number) {
  const store = {
    reads: 0,
    whenReady: () => Promise.resolve(true),
    readPrefixes(): Promise<{ clock: number; markers: Array<[string, number]> }> {
      store.reads++;
      if (store.reads <= failures) return Promise.reject(new Error('READ_PREFIXES timed out'));
      return Promise.resolve({ clock: Date.now() * 1_000, markers: [] });
    },
  };
  return store;
}

const generationsOver = (store: ReturnType<typeof markerStore>) =>
  new PrefixGenerations(
    new BookkeepingKeys('unit', { keyPrefix: '', db: 0 }),
    store as unknown as CacheStore,
    new RedisClock(),
    () => undefined,
  );

/** Runs the timers due within `ms`, and the promise callbacks they start. */
async function advance(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe('PrefixGenerations: the catch-up read of a new subscription', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('is fresh once the read succeeds', async () => {
    const store = markerStore(0);
    const generations = generationsOver(store);
    await generations.subscribed();
    expect(generations.fresh).toBe(true);
    expect(store.reads).toBe(1);
  });

  it('tries a failed read again, backing off, until one succeeds: then fresh, and no more tries', async () => {
    const store = markerStore(3);
    const generations = generationsOver(store);
    await generations.subscribed();
    expect(generations.fresh).toBe(false);
    expect(store.reads).toBe(1);
    // Tried again after 250 ms, then 500 ms, then 1 s.
    await advance(249);
    expect(store.reads).toBe(1);
    await advance(1);
    expect(store.reads).toBe(2);
    await advance(500);
    expect(store.reads).toBe(3);
    expect(generations.fresh).toBe(false);
    await advance(1_000);
    expect(store.reads).toBe(4);
    expect(generations.fresh).toBe(true);
    await advance(60_000);
    expect(store.reads).toBe(4);
    generations.stop();
  });

  it('backs off to at most 2 s between tries', async () => {
    const store = markerStore(Infinity);
    const generations = generationsOver(store);
    await generations.subscribed();
    await advance(250 + 500 + 1_000 + 2_000);
    expect(store.reads).toBe(5);
    await advance(2_000);
    expect(store.reads).toBe(6);
    await advance(10_000);
    expect(store.reads).toBe(11);
    generations.stop();
  });

  it('stops trying once the subscription is lost: the next one makes its own read', async () => {
    const store = markerStore(1);
    const generations = generationsOver(store);
    await generations.subscribed();
    generations.lost();
    await advance(10_000);
    expect(store.reads).toBe(1);
    expect(generations.fresh).toBe(false);

    await generations.subscribed();
    expect(store.reads).toBe(2);
    expect(generations.fresh).toBe(true);
  });

  it('a read the lost subscription retried that succeeds after a new loss does not mark the markers fresh', async () => {
    const store = markerStore(1);
    const generations = generationsOver(store);
    let answer!: () => void;
    const slow = new Promise<void>((resolve) => (answer = resolve));
    await generations.subscribed();
    // The retry's read is in flight when the subscription drops.
    const read = store.readPrefixes.bind(store);
    store.readPrefixes = async () => {
      const reply = await read();
      await slow;
      return reply;
    };
    await advance(250);
    expect(store.reads).toBe(2);
    generations.lost();
    answer();
    await advance(0);
    expect(generations.fresh).toBe(false);
  });

  it('stops trying when the application stops', async () => {
    const store = markerStore(Infinity);
    const generations = generationsOver(store);
    await generations.subscribed();
    generations.stop();
    await advance(10_000);
    expect(store.reads).toBe(1);
  });
});
