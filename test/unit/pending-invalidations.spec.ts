import { PendingInvalidations } from '../../lib/core/pending-invalidations.js';
import type { RedisCacheStore } from '../../lib/store/redis-cache.store.js';

/** A store that records what it was asked to delete, and fails while `failing` is set. */
function fakeStore() {
  const calls = { unlink: [] as string[][], scan: [] as string[], failing: false };
  const store = {
    unlink: async (keys: readonly string[]) => {
      if (calls.failing) throw new Error('down');
      calls.unlink.push([...keys]);
      return keys.length;
    },
    scanAndUnlink: async (prefix: string) => {
      if (calls.failing) throw new Error('down');
      calls.scan.push(prefix);
      return 0;
    },
  } as unknown as RedisCacheStore;
  return { store, calls };
}

describe('PendingInvalidations', () => {
  it('replays keys and prefixes once, then is empty', async () => {
    const pending = new PendingInvalidations('ns:');
    const { store, calls } = fakeStore();
    pending.addKeys(['ns:a', 'ns:b', 'ns:a']);
    pending.addPrefix('ns:posts:');
    expect(pending.size).toBe(3);
    await pending.flush(store);
    expect(calls.unlink).toEqual([['ns:a', 'ns:b']]);
    expect(calls.scan).toEqual(['ns:posts:']);
    expect(pending.size).toBe(0);
    await pending.flush(store);
    expect(calls.unlink).toHaveLength(1);
  });

  it('keeps what fails again for the next recovery', async () => {
    const pending = new PendingInvalidations('ns:');
    const { store, calls } = fakeStore();
    pending.addKeys(['ns:a']);
    pending.addPrefix('ns:p:');
    calls.failing = true;
    await pending.flush(store);
    expect(pending.size).toBe(2);
    calls.failing = false;
    await pending.flush(store);
    expect(calls.unlink).toEqual([['ns:a']]);
    expect(calls.scan).toEqual(['ns:p:']);
  });

  it('past 10,000 keys, clears the whole namespace instead of remembering more', async () => {
    const pending = new PendingInvalidations('ns:');
    const { store, calls } = fakeStore();
    pending.addKeys(Array.from({ length: 10_001 }, (_, i) => `ns:k${i}`));
    pending.addKeys(['ns:later']);
    pending.addPrefix('ns:p:');
    expect(pending.size).toBe(1);
    await pending.flush(store);
    expect(calls.unlink).toEqual([]);
    expect(calls.scan).toEqual(['ns:']);
  });
});
