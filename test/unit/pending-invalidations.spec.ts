import { jest } from '@jest/globals';
import { MAX_PENDING, PendingInvalidations, type Replay } from '../../lib/core/invalidation/pending-invalidations.js';

/** A replay that records what it was asked to delete, clear or invalidate, and fails while `failing` is set. */
function fakeStore() {
  const calls = {
    unlink: [] as string[][],
    cleared: [] as string[],
    tags: [] as string[][],
    failing: false,
  };
  const fail = () => {
    if (calls.failing) throw new Error('down');
  };
  const replay: Replay = {
    deleteKeys: async (keys) => {
      fail();
      calls.unlink.push([...keys]);
    },
    invalidateTags: async (list) => {
      fail();
      calls.tags.push([...list]);
    },
    clearPrefix: async (prefix) => {
      fail();
      calls.cleared.push(prefix);
    },
  };
  return { replay, calls };
}

const noReplay = () => undefined;

describe('PendingInvalidations', () => {
  afterEach(() => jest.useRealTimers());

  it('holds an invalidation back until the timed-out command it undoes is done with', async () => {
    const pending = new PendingInvalidations(noReplay);
    const { replay, calls } = fakeStore();
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    pending.after(settled, () => pending.addKeys(['ns:late']));
    expect(pending.size).toBe(1); // waited for, so the cache is not settled yet
    await pending.flush(replay);
    expect(calls.unlink).toEqual([]); // the write may still land: deleting now could come before it
    settle();
    await settled;
    expect(pending.size).toBe(1);
    await pending.flush(replay);
    expect(calls.unlink).toEqual([['ns:late']]);
    expect(pending.size).toBe(0);
    pending.stop();
  });

  it('replays keys and prefixes once, then is empty', async () => {
    const pending = new PendingInvalidations(noReplay);
    const { replay, calls } = fakeStore();
    pending.addKeys(['ns:a', 'ns:b', 'ns:a']);
    pending.addPrefix('posts:');
    expect(pending.size).toBe(3);
    await pending.flush(replay);
    expect(calls.unlink).toEqual([['ns:a', 'ns:b']]);
    expect(calls.cleared).toEqual(['posts:']); // a new generation for the prefix, not a SCAN
    expect(pending.size).toBe(0);
    pending.stop();
  });

  it('replays failed tag invalidations, keeping them while they fail again', async () => {
    const pending = new PendingInvalidations(noReplay);
    const { replay, calls } = fakeStore();
    pending.addTags(['posts', 'user:1']);
    pending.addTags(['posts']);
    expect(pending.size).toBe(2);
    calls.failing = true;
    await pending.flush(replay);
    expect(pending.size).toBe(2);
    calls.failing = false;
    await pending.flush(replay);
    expect(calls.tags).toEqual([['posts', 'user:1']]);
    expect(pending.size).toBe(0);
    pending.stop();
  });

  it('keeps what fails again, and retries it every second until it goes through', async () => {
    jest.useFakeTimers();
    const { replay, calls } = fakeStore();
    const pending: PendingInvalidations = new PendingInvalidations(() => void pending.flush(replay));
    pending.addKeys(['ns:a']);
    pending.addPrefix('p:');
    calls.failing = true;
    await pending.flush(replay);
    expect(pending.size).toBe(2);
    calls.failing = false;
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls.unlink).toEqual([['ns:a']]);
    expect(calls.cleared).toEqual(['p:']);
    expect(pending.size).toBe(0);
    pending.stop();
  });

  it('retries on its own when nothing else flushes (an error reply is no outage, so no recovery comes)', async () => {
    jest.useFakeTimers();
    const { replay, calls } = fakeStore();
    const pending: PendingInvalidations = new PendingInvalidations(() => void pending.flush(replay));
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
    const pending = new PendingInvalidations(replay);
    pending.addKeys(['ns:a']);
    pending.stop();
    await jest.advanceTimersByTimeAsync(5_000);
    expect(replay).not.toHaveBeenCalled();
  });

  it('past MAX_PENDING keys, clears the whole namespace (a new generation) instead of remembering more', async () => {
    const pending = new PendingInvalidations(noReplay);
    const { replay, calls } = fakeStore();
    pending.addKeys(Array.from({ length: MAX_PENDING + 1 }, (_, i) => `ns:k${i}`));
    pending.addKeys(['ns:later']);
    pending.addPrefix('p:');
    expect(pending.size).toBe(1);
    await pending.flush(replay);
    expect(calls.unlink).toEqual([]);
    expect(calls.cleared).toEqual(['']);
    pending.stop();
  });

  it('past MAX_PENDING tags, clears the whole namespace instead (which invalidates tagged entries too)', async () => {
    const pending = new PendingInvalidations(noReplay);
    const { replay, calls } = fakeStore();
    pending.addTags(Array.from({ length: MAX_PENDING + 1 }, (_, i) => `t${i}`));
    pending.addTags(['later']);
    expect(pending.size).toBe(1);
    await pending.flush(replay);
    expect(calls.tags).toEqual([]);
    expect(calls.cleared).toEqual(['']);
    pending.stop();
  });

  it('past MAX_PENDING timed-out commands awaited, clears the whole namespace instead of holding more', async () => {
    const pending = new PendingInvalidations(noReplay);
    const { replay, calls } = fakeStore();
    const never = new Promise<void>(() => undefined);
    for (let i = 0; i < MAX_PENDING; i++) pending.after(never, () => pending.addKeys([`ns:k${i}`]));
    expect(pending.size).toBe(MAX_PENDING);
    pending.after(never, () => pending.addKeys(['ns:one-too-many']));
    await pending.flush(replay);
    expect(calls.cleared).toEqual(['']);
    expect(calls.unlink).toEqual([]);
    pending.stop();
  });
});
