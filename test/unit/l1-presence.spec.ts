import { BookkeepingKeys } from '../../lib/core/bookkeeping-keys.js';
import { ABSENCE_TRUSTED_MS, CHECK_EVERY_MS, L1Presence } from '../../lib/core/l1/l1-presence.js';
import type { CacheStore } from '../../lib/store/cache-store.js';

// How often a writer asks whether some instance keeps an L1 (the presence marker's EXISTS), on a
// stand-in store that answers at once. What the marker does on Redis is tested in l1.spec.ts.

/** A store whose EXISTS answers `present` on the next tick, counting the questions. */
function markerStore(present: boolean) {
  const store = {
    asked: 0,
    present,
    exists(): Promise<boolean> {
      store.asked++;
      return new Promise((resolve) => setImmediate(() => resolve(store.present)));
    },
  };
  return store;
}

const presenceOver = (store: ReturnType<typeof markerStore>) =>
  new L1Presence(new BookkeepingKeys('app', { keyPrefix: '', db: 0 }), store as unknown as CacheStore);

/** `writes` writes, each asking whether to announce, with a tick between them (the EXISTS answers). */
async function write(presence: L1Presence, writes: number): Promise<boolean[]> {
  const wanted: boolean[] = [];
  for (let i = 0; i < writes; i++) {
    wanted.push(presence.announcementsWanted);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return wanted;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('L1Presence', () => {
  it('asks at most once per CHECK_EVERY_MS while the marker exists, and every write is announced', async () => {
    const store = markerStore(true);
    const presence = presenceOver(store);

    const wanted = await write(presence, 200);
    expect(wanted.every(Boolean)).toBe(true);
    // One question for 200 writes in a few ms: before, each write after an answer asked again.
    expect(store.asked).toBe(1);

    await sleep(CHECK_EVERY_MS + 20);
    await write(presence, 50);
    expect(store.asked).toBe(2);
  });

  it('stops announcing once an answer says none, and announces again once that answer is too old', async () => {
    const store = markerStore(false);
    const presence = presenceOver(store);

    // No answer yet: announced. Then "none", trusted.
    const first = await write(presence, 20);
    expect(first[0]).toBe(true);
    expect(first.at(-1)).toBe(false);
    expect(store.asked).toBe(1);

    // An instance starts keeping an L1: the next question (a quarter second on) hears of it, and
    // no write is left unannounced past ABSENCE_TRUSTED_MS after the last "none" was asked.
    store.present = true;
    await sleep(CHECK_EVERY_MS + 20);
    await write(presence, 5);
    expect(store.asked).toBe(2);
    expect(presence.announcementsWanted).toBe(true);
    await sleep(ABSENCE_TRUSTED_MS);
    expect(presence.announcementsWanted).toBe(true);
  });

  it('a failed question means "announce", and is asked again a quarter second later', async () => {
    const store = markerStore(true);
    let failing = true;
    const exists = store.exists;
    store.exists = () => (failing ? (store.asked++, Promise.reject(new Error('down'))) : exists());
    const presence = presenceOver(store);

    const wanted = await write(presence, 20);
    expect(wanted.every(Boolean)).toBe(true);
    expect(store.asked).toBe(1);
    failing = false;
    await sleep(CHECK_EVERY_MS + 20);
    await write(presence, 5);
    expect(store.asked).toBe(2);
  });
});
