import { jest } from '@jest/globals';
import { PendingInvalidations } from '../../lib/core/pending-invalidations.js';
import type { CacheTags } from '../../lib/core/cache-tags.js';
import type { RedisCacheStore } from '../../lib/store/redis-cache.store.js';

/** A store that records what it was asked to delete or release, and fails while `failing` is set. */
function fakeStore() {
  const calls = {
    unlink: [] as string[][],
    scan: [] as string[],
    released: [] as string[],
    tags: [] as string[][],
    failing: false,
  };
  const fail = () => {
    if (calls.failing) throw new Error('down');
  };
  const store = {
    unlink: async (keys: readonly string[]) => {
      fail();
      calls.unlink.push([...keys]);
      return keys.length;
    },
    scanAndUnlink: async (prefix: string) => {
      fail();
      calls.scan.push(prefix);
      return 0;
    },
    completeLease: async (key: string, token: Buffer, entry: Buffer | undefined, _ttl: number, channel: string) => {
      fail();
      calls.released.push(`${key}/${token.toString('hex')}/${entry === undefined ? 'no value' : 'value'}/${channel}`);
      return true;
    },
  } as unknown as RedisCacheStore;
  const tags = {
    invalidate: async (list: readonly string[]) => {
      fail();
      calls.tags.push([...list]);
    },
  } as unknown as CacheTags;
  return { store, tags, calls };
}

const noReplay = () => undefined;

describe('PendingInvalidations', () => {
  afterEach(() => jest.useRealTimers());

  it('replays keys, prefixes and leases once, then is empty', async () => {
    const pending = new PendingInvalidations('ns:', noReplay);
    const { store, tags, calls } = fakeStore();
    pending.addKeys(['ns:a', 'ns:b', 'ns:a']);
    pending.addPrefix('ns:posts:');
    pending.addLease('ns:c', Buffer.from('0102', 'hex'));
    expect(pending.size).toBe(4);
    await pending.flush(store, 'ns:__lease-released', tags);
    expect(calls.unlink).toEqual([['ns:a', 'ns:b']]);
    expect(calls.scan).toEqual(['ns:posts:']);
    // A lease is given back by its token, with no value: a value stored since stays.
    expect(calls.released).toEqual(['ns:c/0102/no value/ns:__lease-released']);
    expect(pending.size).toBe(0);
    pending.stop();
  });

  it('gives back two leases of one key (two timed-out attempts) by their own tokens', async () => {
    const pending = new PendingInvalidations('ns:', noReplay);
    const { store, tags, calls } = fakeStore();
    pending.addLease('ns:k', Buffer.from('0101010101010101', 'hex'));
    pending.addLease('ns:k', Buffer.from('0202020202020202', 'hex'));
    pending.addLease('ns:k', Buffer.from('0202020202020202', 'hex'));
    expect(pending.size).toBe(2);
    await pending.flush(store, 'ch', tags);
    expect(calls.released.sort()).toEqual(['ns:k/0101010101010101/no value/ch', 'ns:k/0202020202020202/no value/ch']);
    expect(pending.size).toBe(0);
    pending.stop();
  });

  it('replays failed tag invalidations, keeping them while they fail again', async () => {
    const pending = new PendingInvalidations('ns:', noReplay);
    const { store, tags, calls } = fakeStore();
    pending.addTags(['posts', 'user:1']);
    pending.addTags(['posts']);
    expect(pending.size).toBe(2);
    calls.failing = true;
    await pending.flush(store, 'ch', tags);
    expect(pending.size).toBe(2);
    calls.failing = false;
    await pending.flush(store, 'ch', tags);
    expect(calls.tags).toEqual([['posts', 'user:1']]);
    expect(pending.size).toBe(0);
    pending.stop();
  });

  it('keeps what fails again, and retries it every second until it goes through', async () => {
    jest.useFakeTimers();
    const { store, tags, calls } = fakeStore();
    const pending: PendingInvalidations = new PendingInvalidations('ns:', () => void pending.flush(store, 'ch', tags));
    pending.addKeys(['ns:a']);
    pending.addPrefix('ns:p:');
    calls.failing = true;
    await pending.flush(store, 'ch', tags);
    expect(pending.size).toBe(2);
    calls.failing = false;
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls.unlink).toEqual([['ns:a']]);
    expect(calls.scan).toEqual(['ns:p:']);
    expect(pending.size).toBe(0);
    pending.stop();
  });

  it('retries on its own when nothing else flushes (an error reply is no outage, so no recovery comes)', async () => {
    jest.useFakeTimers();
    const { store, tags, calls } = fakeStore();
    const pending: PendingInvalidations = new PendingInvalidations('ns:', () => void pending.flush(store, 'ch', tags));
    pending.addKeys(['ns:a']);
    await jest.advanceTimersByTimeAsync(999);
    expect(calls.unlink).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls.unlink).toEqual([['ns:a']]);
    pending.stop();
  });

  it('stops retrying once stopped', async () => {
    jest.useFakeTimers();
    const replay = jest.fn();
    const pending = new PendingInvalidations('ns:', replay);
    pending.addKeys(['ns:a']);
    pending.stop();
    await jest.advanceTimersByTimeAsync(5_000);
    expect(replay).not.toHaveBeenCalled();
  });

  it('past 10,000 keys, clears the whole namespace instead of remembering more', async () => {
    const pending = new PendingInvalidations('ns:', noReplay);
    const { store, tags, calls } = fakeStore();
    pending.addKeys(Array.from({ length: 10_001 }, (_, i) => `ns:k${i}`));
    pending.addKeys(['ns:later']);
    pending.addPrefix('ns:p:');
    pending.addLease('ns:l', Buffer.from('01', 'hex'));
    expect(pending.size).toBe(1);
    await pending.flush(store, 'ch', tags);
    expect(calls.unlink).toEqual([]);
    expect(calls.released).toEqual([]);
    expect(calls.scan).toEqual(['ns:']);
    pending.stop();
  });
});
